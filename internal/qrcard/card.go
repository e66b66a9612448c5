// Package qrcard encodes and decodes QR enrollment cards: the server's
// address, its CA's SHA-256 fingerprint and an account's one-time
// activation code in one URI,
//
//	phonex://enroll?v=1&user=USER%40DOMAIN&server=HOST%3APORT&ca=HEX64&code=XXXX-XXXX-XXXX-XXXX
//
// (RFC 3986 syntax, query values percent-encoded), rendered as a QR code
// (ISO/IEC 18004, error correction level M) for a terminal, PNG or SVG, and
// read back from a picture. The code is a secret: whoever holds the card
// can enroll the account's first device until the code is used or expires,
// so every rendering says so. The fingerprint lets the device pin the CA
// without trusting the network it enrolls over.
package qrcard

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/phonex/phonex/internal/ident"
)

// Scheme and Host of a card URI.
const (
	Scheme  = "phonex"
	Host    = "enroll"
	Version = "1"
	// MaxLen bounds a card URI; a real one is about 170 bytes.
	MaxLen = 1024
)

// Errors a parse returns; a *FieldError names the field.
var (
	ErrNotCard  = errors.New("not a PhoneX enrollment card")
	ErrTooLong  = errors.New("card text too long")
	ErrVersion  = errors.New("card version not supported (a newer phonex reads it)")
	ErrMissing  = errors.New("missing")
	ErrRepeated = errors.New("given more than once")
	ErrInvalid  = errors.New("not valid")
	ErrNoCode   = errors.New("no QR code found in the picture")
)

// FieldError says which field of a card is wrong.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return fmt.Sprintf("enrollment card: %s: %v", e.Field, e.Err) }
func (e *FieldError) Unwrap() error { return e.Err }

// Card is what a device needs to enroll without typing.
type Card struct {
	User   string // user@domain
	Server string // host:port of the node's HTTPS API
	CA     string // SHA-256 of the CA certificate (DER), 64 lower-case hex digits
	Code   string // activation code, XXXX-XXXX-XXXX-XXXX: a secret
}

// URI is the card's canonical text, which Parse reads back to the same
// card.
func (c Card) URI() string {
	q := url.Values{}
	q.Set("v", Version)
	q.Set("user", c.User)
	q.Set("server", c.Server)
	q.Set("ca", c.CA)
	q.Set("code", c.Code)
	// Encode sorts the keys: one text per card.
	return Scheme + "://" + Host + "?" + q.Encode()
}

// Check validates every field and puts it in canonical form.
func (c *Card) Check() error {
	a, err := ident.ParseAccount(c.User)
	if err != nil {
		return &FieldError{"user", fmt.Errorf("%w: %v", ErrInvalid, err)}
	}
	c.User = a.String()
	if err := checkServer(c.Server); err != nil {
		return &FieldError{"server", err}
	}
	fp, err := canonicalFingerprint(c.CA)
	if err != nil {
		return &FieldError{"ca", err}
	}
	c.CA = fp
	code, err := canonicalCode(c.Code)
	if err != nil {
		return &FieldError{"code", err}
	}
	c.Code = code
	return nil
}

// Parse reads a card's text (its URI), checking every field.
func Parse(s string) (Card, error) {
	s = strings.TrimSpace(s)
	if len(s) > MaxLen {
		return Card{}, ErrTooLong
	}
	u, err := url.Parse(s)
	if err != nil || !strings.EqualFold(u.Scheme, Scheme) || !strings.EqualFold(u.Host, Host) || u.User != nil || (u.Path != "" && u.Path != "/") || u.Opaque != "" {
		return Card{}, ErrNotCard
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Card{}, fmt.Errorf("%w: %v", ErrNotCard, err)
	}
	if v, ok := q["v"]; ok && (len(v) != 1 || v[0] != Version) {
		return Card{}, ErrVersion
	}
	get := func(k string) (string, error) {
		v := q[k]
		switch {
		case len(v) == 0:
			return "", &FieldError{k, ErrMissing}
		case len(v) > 1:
			return "", &FieldError{k, ErrRepeated}
		}
		return v[0], nil
	}
	var c Card
	for _, f := range []struct {
		k string
		p *string
	}{{"user", &c.User}, {"server", &c.Server}, {"ca", &c.CA}, {"code", &c.Code}} {
		if *f.p, err = get(f.k); err != nil {
			return Card{}, err
		}
	}
	if err := c.Check(); err != nil {
		return Card{}, err
	}
	return c, nil
}

func checkServer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" || strings.ContainsAny(host, " /?#@\\") {
		return fmt.Errorf("%w: want HOST:PORT", ErrInvalid)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("%w: port %q", ErrInvalid, port)
	}
	return nil
}

func canonicalFingerprint(s string) (string, error) {
	s = strings.ToLower(strings.ReplaceAll(s, ":", ""))
	if len(s) != 64 {
		return "", fmt.Errorf("%w: want 64 hex digits (SHA-256)", ErrInvalid)
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return "", fmt.Errorf("%w: want 64 hex digits (SHA-256)", ErrInvalid)
		}
	}
	return s, nil
}

// canonicalCode accepts a code in any case with or without separators.
func canonicalCode(s string) (string, error) {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(s))
	if len(c) != 16 {
		return "", fmt.Errorf("%w: want 16 characters, XXXX-XXXX-XXXX-XXXX", ErrInvalid)
	}
	for _, r := range c {
		if !(r >= 'A' && r <= 'Z' || r >= '2' && r <= '7') {
			return "", fmt.Errorf("%w: letters A-Z and digits 2-7 only", ErrInvalid)
		}
	}
	return c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16], nil
}
