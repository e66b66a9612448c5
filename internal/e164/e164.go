// Package e164 parses telephone numbers in E.164 form (ITU-T E.164 §6:
// a country code and national number of at most 15 digits) and makes the
// directory's discovery hash of one.
//
// What the hash does not hide: numbers live in a small space (a country's
// mobile ranges hold some 10^8-10^9 numbers, all of E.164 below 10^15), so
// anyone who sees a hash finds the number by hashing candidates, on one GPU
// in seconds to hours. The hash keeps numbers out of plain sight in
// requests; it is no protection against the node or an eavesdropper on a
// stolen TLS key. The per-device query budget is what limits enumeration
// through the directory itself.
package e164

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

// Errors of Parse.
var (
	ErrNoPlus     = errors.New("a number in E.164 form starts with +")
	ErrNotDigit   = errors.New("a number in E.164 form has only digits after +")
	ErrLength     = errors.New("a number in E.164 form has 8 to 15 digits")
	ErrLeadZero   = errors.New("a country code does not start with 0")
	ErrEmptyInput = errors.New("empty number")
)

// Min and Max are the digits accepted. E.164 allows up to 15; numbers
// shorter than 8 digits with their country code are service or short
// numbers that no one claims.
const (
	Min = 8
	Max = 15
)

// Parse checks a number given in E.164 form, as typed by a user: spaces,
// dashes, dots and parentheses between digits are dropped. It returns the
// canonical form: + and the digits.
func Parse(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmptyInput
	}
	if !strings.HasPrefix(s, "+") {
		return "", ErrNoPlus
	}
	var b strings.Builder
	b.WriteByte('+')
	n := 0
	for _, r := range s[1:] {
		switch {
		case r >= '0' && r <= '9':
			n++
			if n > Max {
				return "", ErrLength
			}
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return "", fmt.Errorf("%w: %q", ErrNotDigit, r)
		}
	}
	if n < Min {
		return "", ErrLength
	}
	out := b.String()
	if out[1] == '0' {
		return "", ErrLeadZero
	}
	return out, nil
}

// Canonical reports whether s is a number exactly as Parse returns it,
// the only form the node's API accepts.
func Canonical(s string) error {
	c, err := Parse(s)
	if err != nil {
		return err
	}
	if c != s {
		return fmt.Errorf("number not in canonical form: want %s", c)
	}
	return nil
}

// HashLen is the size of a discovery hash.
const HashLen = sha256.Size

// hashLabel separates discovery hashes from every other SHA-256 use.
const hashLabel = "phonex/v1/directory-discovery\x00"

// Hash is the discovery hash of a canonical number: SHA-256 over a
// domain-separation label and the number (see the package comment for
// what it does not hide).
func Hash(canonical string) []byte {
	h := sha256.Sum256([]byte(hashLabel + canonical))
	return h[:]
}

// ENUMDomain is the number's domain name under the given ENUM apex
// (RFC 6116 §2.4: the digits reversed, dot-separated), such as
// 9.8.7.6.5.4.3.2.1.0.2.4.e164.example. for +420123456789.
func ENUMDomain(canonical, apex string) string {
	d := canonical[1:]
	var b strings.Builder
	for i := len(d) - 1; i >= 0; i-- {
		b.WriteByte(d[i])
		b.WriteByte('.')
	}
	b.WriteString(strings.TrimSuffix(apex, "."))
	b.WriteByte('.')
	return b.String()
}
