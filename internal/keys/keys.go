// Package keys holds a device's key suites: "ec" (Ed25519 signatures plus an
// X25519 key-agreement key certified alongside) and "rsa" (one RSA key of
// 2048, 3072 or 4096 bits for signatures and encryption, the seed's suite).
// Keys are made on the device; only public halves leave it, in a CSR.
package keys

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/url"

	"github.com/phonex/phonex/internal/ident"
)

// Suite names a key suite.
type Suite string

const (
	SuiteEC  Suite = "ec"
	SuiteRSA Suite = "rsa"
)

// ErrSuite reports an unknown suite or an unsupported key size.
var ErrSuite = errors.New("unsupported key suite")

// Device is a device's private keys.
type Device struct {
	Suite Suite
	Sign  crypto.Signer    // ed25519.PrivateKey or *rsa.PrivateKey
	Kex   *ecdh.PrivateKey // X25519; nil for the rsa suite
}

// Generate makes fresh keys. rsaBits is used only by the rsa suite.
func Generate(s Suite, rsaBits int) (*Device, error) {
	switch s {
	case SuiteEC, "":
		_, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("ed25519 key: %w", err)
		}
		kx, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("x25519 key: %w", err)
		}
		return &Device{Suite: SuiteEC, Sign: sk, Kex: kx}, nil
	case SuiteRSA:
		switch rsaBits {
		case 2048, 3072, 4096:
		default:
			return nil, fmt.Errorf("%w: rsa-%d (use 2048, 3072 or 4096)", ErrSuite, rsaBits)
		}
		k, err := rsa.GenerateKey(rand.Reader, rsaBits)
		if err != nil {
			return nil, fmt.Errorf("rsa key: %w", err)
		}
		return &Device{Suite: SuiteRSA, Sign: k}, nil
	}
	return nil, fmt.Errorf("%w: %q (use ec or rsa)", ErrSuite, s)
}

// SuiteOf names the suite of a certificate's public key.
func SuiteOf(pub crypto.PublicKey) (Suite, error) {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return SuiteEC, nil
	case *rsa.PublicKey:
		if b := k.N.BitLen(); b != 2048 && b != 3072 && b != 4096 {
			return "", fmt.Errorf("%w: rsa-%d", ErrSuite, b)
		}
		return SuiteRSA, nil
	}
	return "", fmt.Errorf("%w: public key %T", ErrSuite, pub)
}

// CSR makes a certificate request for dev, signed by the signing key, with the
// identity as URI SAN. The X25519 key travels beside it with KexProof.
func (d *Device) CSR(dev ident.Device) ([]byte, error) {
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: dev.String()},
		URIs:    []*url.URL{dev.URI()},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, d.Sign)
	if err != nil {
		return nil, fmt.Errorf("create csr: %w", err)
	}
	return der, nil
}

// kexContext separates the key-binding signature from every other use of
// the signing key.
const kexContext = "phonex/v1/kex-binding\x00"

// KexProof signs the binding of the X25519 key to the device identity, so the
// CA certifies only a key-agreement key that the device's signing key vouches
// for. Nil for the rsa suite.
func (d *Device) KexProof(dev ident.Device) (pub, sig []byte, err error) {
	if d.Kex == nil {
		return nil, nil, nil
	}
	pub = d.Kex.PublicKey().Bytes()
	sig, err = Sign(d.Sign, kexMessage(dev, pub))
	return pub, sig, err
}

// VerifyKexProof checks a KexProof against the CSR's signing key.
func VerifyKexProof(signer crypto.PublicKey, dev ident.Device, pub, sig []byte) (*ecdh.PublicKey, error) {
	k, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("x25519 key: %w", err)
	}
	if err := Verify(signer, kexMessage(dev, pub), sig); err != nil {
		return nil, fmt.Errorf("x25519 key binding: %w", err)
	}
	return k, nil
}

func kexMessage(dev ident.Device, pub []byte) []byte {
	return append([]byte(kexContext+dev.String()+"\x00"), pub...)
}

// ErrSignature reports a signature that does not verify.
var ErrSignature = errors.New("bad signature")

// Sign signs msg with Ed25519 (pure) or RSA-PSS with SHA-256 (RFC 8017 §8.1).
func Sign(k crypto.Signer, msg []byte) ([]byte, error) {
	switch k.Public().(type) {
	case ed25519.PublicKey:
		return k.Sign(rand.Reader, msg, crypto.Hash(0))
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		return k.Sign(rand.Reader, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	}
	return nil, fmt.Errorf("%w: signer %T", ErrSuite, k.Public())
}

// Verify checks a signature made by Sign.
func Verify(pub crypto.PublicKey, msg, sig []byte) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			return ErrSignature
		}
		return nil
	case *rsa.PublicKey:
		h := sha256.Sum256(msg)
		if rsa.VerifyPSS(k, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) != nil {
			return ErrSignature
		}
		return nil
	}
	return fmt.Errorf("%w: public key %T", ErrSuite, pub)
}

// SamePublic reports whether the signing key matches a certificate.
func (d *Device) SamePublic(cert *x509.Certificate) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	p, ok := d.Sign.Public().(equaler)
	return ok && p.Equal(cert.PublicKey)
}
