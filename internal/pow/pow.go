// Package pow is the human check of password logins from a new device: a
// hashcash-style proof of work (Back, "Hashcash - A Denial of Service
// Counter-Measure", 2002) that a command-line client can solve on its own.
// The design's "then a human check" stage exists to make each further guess
// cost the guesser; a CAPTCHA has no place in a CLI, CPU time does.
//
// The server issues a stateless token, MACed with a key only it holds and
// bound to the subject (the account) and an expiry. A solution is a counter
// such that SHA-256("phonex/v1/pow" 0x00 subject 0x00 token counter) starts
// with at least Bits zero bits. The server remembers spent tokens until they
// expire, so each solution buys one attempt.
package pow

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"
)

// Errors callers branch on.
var (
	ErrMalformed = errors.New("pow: malformed challenge")
	ErrForged    = errors.New("pow: challenge not issued by this server")
	ErrExpired   = errors.New("pow: challenge expired")
	ErrTooEasy   = errors.New("pow: challenge easier than required")
	ErrUnsolved  = errors.New("pow: wrong solution")
	ErrTooHard   = errors.New("pow: challenge harder than this client solves")
)

const (
	version   = 1
	nonceSize = 16
	macSize   = sha256.Size
	// TokenSize is the length of every token: version, bits, expiry
	// (Unix seconds), nonce, MAC.
	TokenSize = 1 + 1 + 8 + nonceSize + macSize
	// MaxBits bounds the work a server may ask for (2^28 hashes is tens
	// of seconds on one core); a client refuses more.
	MaxBits = 28
)

// Challenge is a parsed token.
type Challenge struct {
	Bits    int
	Expires time.Time
	Nonce   []byte
}

// Issue makes a token for subject that asks for bits zero bits and is
// valid until expires.
func Issue(key []byte, subject string, bits int, expires time.Time) []byte {
	t := make([]byte, TokenSize-macSize, TokenSize)
	t[0], t[1] = version, byte(bits)
	binary.BigEndian.PutUint64(t[2:10], uint64(expires.Unix()))
	rand.Read(t[10 : 10+nonceSize])
	return append(t, mac(key, subject, t)...)
}

func mac(key []byte, subject string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("phonex/v1/pow-mac\x00" + subject + "\x00"))
	m.Write(body)
	return m.Sum(nil)
}

// Parse reads a token's fields without checking its MAC.
func Parse(token []byte) (Challenge, error) {
	if len(token) != TokenSize {
		return Challenge{}, fmt.Errorf("%w: %d bytes, want %d", ErrMalformed, len(token), TokenSize)
	}
	if token[0] != version {
		return Challenge{}, fmt.Errorf("%w: version %d", ErrMalformed, token[0])
	}
	if token[1] == 0 || token[1] > 64 {
		return Challenge{}, fmt.Errorf("%w: %d bits", ErrMalformed, token[1])
	}
	exp := binary.BigEndian.Uint64(token[2:10])
	if exp > 1<<40 {
		return Challenge{}, fmt.Errorf("%w: expiry out of range", ErrMalformed)
	}
	return Challenge{Bits: int(token[1]), Expires: time.Unix(int64(exp), 0), Nonce: token[10 : 10+nonceSize]}, nil
}

// puzzle is the hashed input without the counter's 8 bytes at its end.
func puzzle(subject string, token []byte) []byte {
	b := append([]byte("phonex/v1/pow\x00"+subject+"\x00"), token...)
	return append(b, make([]byte, 8)...)
}

// zeroBits counts the leading zero bits of SHA-256(in) once the counter
// is put in in's last 8 bytes.
func zeroBits(in []byte, counter uint64) int {
	binary.BigEndian.PutUint64(in[len(in)-8:], counter)
	sum := sha256.Sum256(in)
	n := 0
	for _, b := range sum {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

// Verify checks a solution: the token was issued by key for subject, has
// not expired, asks for at least minBits, and counter solves it. It returns
// the challenge so the caller can record it as spent.
func Verify(key []byte, subject string, token []byte, counter uint64, minBits int, now time.Time) (Challenge, error) {
	c, err := Parse(token)
	if err != nil {
		return c, err
	}
	body := token[:TokenSize-macSize]
	// The MAC is compared in constant time: it is a secret-keyed value.
	if !hmac.Equal(mac(key, subject, body), token[TokenSize-macSize:]) {
		return c, ErrForged
	}
	if !now.Before(c.Expires) {
		return c, ErrExpired
	}
	if c.Bits < minBits {
		return c, ErrTooEasy
	}
	if zeroBits(puzzle(subject, token), counter) < c.Bits {
		return c, ErrUnsolved
	}
	return c, nil
}

// Solve searches for a counter that solves token for subject. It stops
// when ctx ends.
func Solve(ctx context.Context, subject string, token []byte) (uint64, error) {
	c, err := Parse(token)
	if err != nil {
		return 0, err
	}
	if c.Bits > MaxBits {
		return 0, fmt.Errorf("%w: %d bits", ErrTooHard, c.Bits)
	}
	in := puzzle(subject, token)
	for n := uint64(0); ; n++ {
		if n%4096 == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if zeroBits(in, n) >= c.Bits {
			return n, nil
		}
	}
}
