package filecrypt

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
)

// Signature algorithms of slots and headers.
const (
	// SigEd25519 is Ed25519 (RFC 8032 §5.1), the ec suite.
	SigEd25519 byte = 1
	// SigRSAPSS is RSASSA-PSS with SHA-256 and a 32-byte salt (RFC 8017
	// §8.1), the rsa suite.
	SigRSAPSS byte = 2
)

const maxSigSize = 512 // RSA-4096

// CertHash is the SHA-256 of a certificate's DER encoding; slots and headers
// name the certificates they are bound to by it.
func CertHash(cert *x509.Certificate) [32]byte { return sha256.Sum256(cert.Raw) }

func sigAlgOf(pub crypto.PublicKey) (byte, error) {
	switch pub.(type) {
	case ed25519.PublicKey:
		return SigEd25519, nil
	case *rsa.PublicKey:
		return SigRSAPSS, nil
	}
	return 0, fmt.Errorf("signing key %T: %w", pub, ErrVersion)
}

func sign(signer crypto.Signer, msg []byte) (byte, []byte, error) {
	alg, err := sigAlgOf(signer.Public())
	if err != nil {
		return 0, nil, err
	}
	sig, err := keys.Sign(signer, msg)
	if err != nil {
		return 0, nil, fmt.Errorf("sign: %w", err)
	}
	return alg, sig, nil
}

// verifySigned checks that cert is the certificate named by hash and issued
// to device, and that sig over msg verifies with its key. The caller has
// verified cert against the issuing CA.
func verifySigned(cert *x509.Certificate, device string, hash [32]byte, alg byte, msg, sig []byte) error {
	if cert == nil {
		return fmt.Errorf("no certificate for %s: %w", device, ErrBadSignature)
	}
	if got := CertHash(cert); !constantEqual(got[:], hash[:]) {
		return fmt.Errorf("certificate of %s is not the one signed for: %w", device, ErrBadSignature)
	}
	d, err := ident.FromURIs(cert.URIs)
	if err != nil || d.String() != device {
		return fmt.Errorf("certificate does not name %s: %w", device, ErrBadSignature)
	}
	want, err := sigAlgOf(cert.PublicKey)
	if err != nil {
		return err
	}
	if alg != want {
		return fmt.Errorf("signature algorithm %d with a %T key: %w", alg, cert.PublicKey, ErrBadSignature)
	}
	if err := keys.Verify(cert.PublicKey, msg, sig); err != nil {
		return fmt.Errorf("signature of %s: %w", device, ErrBadSignature)
	}
	return nil
}

func checkDevice(s string) error {
	d, err := ident.ParseDevice(s)
	if err != nil {
		return fmt.Errorf("device %q: %v: %w", s, err, ErrMalformed)
	}
	if d.String() != s {
		return fmt.Errorf("device %q is not in canonical form: %w", s, ErrMalformed)
	}
	return nil
}

func checkAccount(s string) error {
	a, err := ident.ParseAccount(s)
	if err != nil {
		return fmt.Errorf("account %q: %v: %w", s, err, ErrMalformed)
	}
	if a.String() != s {
		return fmt.Errorf("account %q is not in canonical form: %w", s, ErrMalformed)
	}
	return nil
}

// accountOf returns the account part of a device identity.
func accountOf(device string) string {
	d, err := ident.ParseDevice(device)
	if err != nil {
		return ""
	}
	return d.Account.String()
}
