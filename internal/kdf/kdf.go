// Package kdf turns a user's password into the independent secrets a device
// needs, and hardens them with an oblivious PRF evaluated by the home cluster
// (RFC 9497, ristretto255-SHA512, base mode).
//
// The chain, per purpose p in {server-auth, keystore, database}:
//
//	base = scrypt(password, salt_scrypt, N, r, p) (64 bytes)
//	s_p  = PBKDF2-HMAC-SHA256(base || "phonex/v1/" || p, salt_p, 8192 iterations, 32 bytes)
//
// s_p alone never protects anything. It is the input of an OPRF exchange with a
// key k held by the home cluster (per account for server-auth, per device for
// the keystore and database), and the final key is
//
//	K_p = HKDF-SHA256(ikm = y || s_p, salt = nil, info = "phonex/v1/key/" || p)
//
// where y = OPRF(k, s) is the RFC 9497 output. Without k, a stolen profile
// gives nothing to test a guess against; with the server's database but
// without the device, there is no ciphertext to test against either.
package kdf

import (
	"crypto/hkdf"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"

	"golang.org/x/crypto/scrypt"
)

// Purpose names an independent secret derived from the password.
type Purpose string

const (
	ServerAuth Purpose = "server-auth"
	Keystore   Purpose = "keystore"
	Database   Purpose = "database"
)

// PBKDF2Iterations is the seed's iteration count.
const PBKDF2Iterations = 8192

// SaltSize is the size of every salt.
const SaltSize = 16

// ErrParams reports KDF parameters outside the accepted range; a peer or a
// profile file that asks for weaker ones is refused.
var ErrParams = errors.New("kdf: parameters out of range")

// Params are the scrypt cost parameters. They travel with the salts so that a
// later release can raise them without breaking older profiles.
type Params struct {
	LogN int `json:"log_n"`
	R    int `json:"r"`
	P    int `json:"p"`
}

// DefaultParams costs about 0.2 s and 64 MiB per guess on a 2020s server core.
var DefaultParams = Params{LogN: 16, R: 8, P: 1}

// MinParams is the weakest cost a node accepts for an account's password by
// default, and the weakest a device accepts from a server at login, so that
// a compromised server cannot downgrade the KDF of a device it adds.
var MinParams = Params{LogN: 16, R: 8, P: 1}

// AtLeast reports an error unless p costs at least as much as min in every
// parameter.
func (p Params) AtLeast(min Params) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.LogN < min.LogN || p.R < min.R || p.P < min.P {
		return fmt.Errorf("%w: log_n=%d r=%d p=%d is weaker than the minimum log_n=%d r=%d p=%d", ErrParams, p.LogN, p.R, p.P, min.LogN, min.R, min.P)
	}
	return nil
}

// Validate refuses parameters that are too weak or absurdly expensive.
func (p Params) Validate() error {
	if p.LogN < 14 || p.LogN > 22 || p.R < 8 || p.R > 32 || p.P < 1 || p.P > 4 {
		return fmt.Errorf("%w: log_n=%d r=%d p=%d", ErrParams, p.LogN, p.R, p.P)
	}
	return nil
}

// Salts holds one salt per stage; each is SaltSize random bytes.
type Salts struct {
	Scrypt   []byte `json:"scrypt"`
	Auth     []byte `json:"auth,omitempty"`
	Keystore []byte `json:"keystore,omitempty"`
	Database []byte `json:"database,omitempty"`
}

// NewSalts makes fresh random salts for every stage.
func NewSalts() Salts {
	s := Salts{}
	for _, b := range []*[]byte{&s.Scrypt, &s.Auth, &s.Keystore, &s.Database} {
		*b = make([]byte, SaltSize)
		rand.Read(*b)
	}
	return s
}

// Base runs scrypt once; every purpose secret is derived from its output, so
// a login or an unlock pays for scrypt once.
func Base(password []byte, p Params, salt []byte) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("%w: scrypt salt of %d bytes", ErrParams, len(salt))
	}
	if len(password) == 0 {
		return nil, errors.New("kdf: empty password")
	}
	b, err := scrypt.Key(password, salt, 1<<p.LogN, p.R, p.P, 64)
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}
	return b, nil
}

// Secret derives the purpose secret s_p from the scrypt output.
func Secret(base []byte, purpose Purpose, salt []byte) ([]byte, error) {
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("%w: %s salt of %d bytes", ErrParams, purpose, len(salt))
	}
	in := append(append([]byte{}, base...), "phonex/v1/"+string(purpose)...)
	return pbkdf2.Key(sha256.New, string(in), salt, PBKDF2Iterations, 32)
}

// Final combines the OPRF output y with the purpose secret into the key that
// actually protects something.
func Final(y, secret []byte, purpose Purpose) ([]byte, error) {
	ikm := append(append([]byte{}, y...), secret...)
	return hkdf.Key(sha256.New, ikm, nil, "phonex/v1/key/"+string(purpose), 32)
}
