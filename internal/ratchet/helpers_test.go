package ratchet

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"encoding/hex"
	"io"
	mrand "math/rand/v2"
	"testing"
)

// seeded returns a deterministic randomness source for tests.
func seeded(seed uint64) io.Reader {
	var s [32]byte
	s[0], s[1], s[2], s[3] = byte(seed), byte(seed>>8), byte(seed>>16), byte(seed>>24)
	return mrand.NewChaCha8(s)
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newPair starts a raw Double Ratchet pair from a fixed shared secret, as
// §3.3 does after a key agreement.
func newPair(t testing.TB, seed uint64, opts ...Option) (alice, bob *Session) {
	t.Helper()
	r := seeded(seed)
	bobKey, err := generateDH(r)
	if err != nil {
		t.Fatal(err)
	}
	var sk [32]byte
	copy(sk[:], bytes.Repeat([]byte{0x5a}, 32))
	ad := []byte("test associated data")
	alice, err = NewInitiator(seeded(seed+1), sk, ad, bobKey.PublicKey(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	bob, err = NewResponder(seeded(seed+2), sk, ad, bobKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return alice, bob
}

func snapshot(t testing.TB, s *Session) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustEncrypt(t testing.TB, s *Session, pt string) []byte {
	t.Helper()
	m, err := s.Encrypt([]byte(pt), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustDecrypt(t testing.TB, s *Session, m []byte, want string) {
	t.Helper()
	pt, err := s.Decrypt(m, nil)
	if err != nil {
		t.Fatalf("decrypt %q: %v", want, err)
	}
	if string(pt) != want {
		t.Fatalf("decrypt = %q, want %q", pt, want)
	}
}

// newIdentity makes a device identity from a seed.
func newIdentity(t testing.TB, r io.Reader) *IdentityKeyPair {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(r, seed); err != nil {
		t.Fatal(err)
	}
	x := make([]byte, 32)
	if _, err := io.ReadFull(r, x); err != nil {
		t.Fatal(err)
	}
	dhKey, err := ecdh.X25519().NewPrivateKey(x)
	if err != nil {
		t.Fatal(err)
	}
	ik, err := NewIdentityKeyPair(ed25519.NewKeyFromSeed(seed), dhKey)
	if err != nil {
		t.Fatal(err)
	}
	return ik
}
