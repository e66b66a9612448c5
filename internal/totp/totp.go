// Package totp implements time-based one-time passwords (RFC 6238 over the
// HOTP of RFC 4226), the second factor of the admin panel's sign-in, and
// the otpauth:// URI authenticator apps read.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/url"
	"strings"
	"time"
)

// Defaults every common authenticator app uses: SHA-1, 6 digits, 30 s
// (RFC 6238 §4: X = 30 s is the recommended step).
const (
	Digits = 6
	Period = 30 * time.Second
	// SecretSize is 160 bits, the HMAC-SHA-1 output length RFC 4226 §4
	// requires at least (R6) and recommends.
	SecretSize = 20
)

// Errors of Verify.
var (
	ErrMalformed = errors.New("one-time code must be 6 digits")
	ErrWrong     = errors.New("one-time code does not match")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a fresh random key.
func NewSecret() []byte {
	b := make([]byte, SecretSize)
	rand.Read(b)
	return b
}

// EncodeSecret is the key as authenticator apps take it typed in.
func EncodeSecret(k []byte) string { return b32.EncodeToString(k) }

// Step is the RFC 6238 §4.2 time counter T = floor((t - T0) / X), T0 = 0.
func Step(t time.Time, period time.Duration) int64 {
	return t.Unix() / int64(period/time.Second)
}

// HOTP is RFC 4226 §5.3: HMAC over the 8-byte counter, dynamic truncation,
// modulo 10^digits, zero-padded.
func HOTP(h func() hash.Hash, key []byte, counter int64, digits int) string {
	m := hmac.New(h, key)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], uint64(counter))
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// Code is the default TOTP (SHA-1, 6 digits, 30 s) at t.
func Code(key []byte, t time.Time) string {
	return HOTP(sha1.New, key, Step(t, Period), Digits)
}

// Verify checks code against the steps around now: one step either way for
// clock drift and typing time (RFC 6238 §5.2 allows "at most one time step"
// of network delay; the same is allowed for a slow clock). It returns the
// step that matched, which the caller records so the code is not accepted
// again (§5.2: the verifier "MUST NOT accept the second attempt of the
// OTP after the successful validation").
func Verify(key []byte, code string, now time.Time) (int64, error) {
	code = strings.TrimSpace(code)
	if len(code) != Digits {
		return 0, ErrMalformed
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return 0, ErrMalformed
		}
	}
	t := Step(now, Period)
	match := int64(-1)
	// Every candidate is compared, in constant time, so the time taken
	// does not tell which step matched.
	for _, s := range []int64{t - 1, t, t + 1} {
		if subtle.ConstantTimeCompare([]byte(HOTP(sha1.New, key, s, Digits)), []byte(code)) == 1 {
			match = s
		}
	}
	if match < 0 {
		return 0, ErrWrong
	}
	return match, nil
}

// URI is the Key Uri Format authenticator apps scan:
// otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...
func URI(issuer, account string, key []byte) string {
	q := url.Values{}
	q.Set("secret", EncodeSecret(key))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(Digits))
	q.Set("period", fmt.Sprint(int(Period/time.Second)))
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	return "otpauth://totp/" + label + "?" + q.Encode()
}
