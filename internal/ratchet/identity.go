package ratchet

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
)

// Type bytes of the Encode functions (PQXDH §2.1 EncodeEC, EncodeKEM). They
// are PhoneX's own choices and make no claim of compatibility with another
// deployment's encodings.
const (
	typeX25519    = 0x05
	typeEd25519   = 0x06
	typeMLKEM768  = 0x07
	ecEncodedSize = 1 + 32
)

// Signature contexts. The identity signing key is the device's Ed25519 key,
// which also signs other PhoneX structures, so every signature this package
// makes starts with its own context string.
const (
	ctxIdentityBinding = "PhoneX ratchet v1 identity-dh binding\x00"
	ctxSignedPrekey    = "PhoneX ratchet v1 signed prekey\x00"
	ctxPQPrekey        = "PhoneX ratchet v1 pq prekey\x00"
)

// encodeEC is EncodeEC of PQXDH §2.1 for an X25519 public key: the type byte
// then the little-endian u-coordinate.
func encodeEC(pub []byte) []byte {
	return append([]byte{typeX25519}, pub...)
}

// IdentityKey is a device's public identity: an Ed25519 key that signs
// (prekeys, and the binding below) and an X25519 key that takes part in the
// PQXDH Diffie-Hellman computations as IK.
//
// PQXDH §2.4 uses one Curve25519 key for both roles through XEdDSA. PhoneX's
// device layer certifies an Ed25519 key and a separate X25519 key instead, so
// both are used as given and never converted into each other. The X25519 key
// is bound to the Ed25519 key by Binding, an Ed25519 signature over a
// context string and EncodeEC(DH); the pair, not either key alone, is the
// identity, and TrustStore pins the pair.
type IdentityKey struct {
	Signing ed25519.PublicKey
	DH      *ecdh.PublicKey
	Binding []byte
}

// identityEncodedSize is the length of IdentityKey.Encode.
const identityEncodedSize = 2*ecEncodedSize + ed25519.SignatureSize

// Encode is Encode(IK) of the associated data (PQXDH §3.3):
// EncodeEC(DH) || 0x06 || Ed25519 key || binding signature.
func (k IdentityKey) Encode() []byte {
	out := make([]byte, 0, identityEncodedSize)
	if k.DH != nil {
		out = append(out, encodeEC(k.DH.Bytes())...)
	}
	out = append(out, typeEd25519)
	out = append(out, k.Signing...)
	return append(out, k.Binding...)
}

func parseIdentityKey(b []byte) (IdentityKey, error) {
	var k IdentityKey
	if len(b) != identityEncodedSize || b[0] != typeX25519 || b[ecEncodedSize] != typeEd25519 {
		return k, fmt.Errorf("identity key: %w", ErrMalformed)
	}
	pub, err := ecdh.X25519().NewPublicKey(b[1:ecEncodedSize])
	if err != nil {
		return k, fmt.Errorf("identity dh key: %w", ErrMalformed)
	}
	k.DH = pub
	k.Signing = append(ed25519.PublicKey(nil), b[ecEncodedSize+1:2*ecEncodedSize]...)
	k.Binding = append([]byte(nil), b[2*ecEncodedSize:]...)
	return k, nil
}

// Verify checks that the Ed25519 key vouches for the X25519 key.
func (k IdentityKey) Verify() error {
	if len(k.Signing) != ed25519.PublicKeySize || k.DH == nil {
		return fmt.Errorf("identity key incomplete: %w", ErrMalformed)
	}
	if !ed25519.Verify(k.Signing, bindingMessage(k.DH), k.Binding) {
		return fmt.Errorf("identity dh binding: %w", ErrSignature)
	}
	return nil
}

// Equal compares two identity keys (both public halves) in constant time.
// The binding signature is not compared: Ed25519 signatures are
// deterministic, and the keys alone determine the identity.
func (k IdentityKey) Equal(o IdentityKey) bool {
	if k.DH == nil || o.DH == nil {
		return false
	}
	a := append(append([]byte(nil), k.Signing...), k.DH.Bytes()...)
	b := append(append([]byte(nil), o.Signing...), o.DH.Bytes()...)
	return subtle.ConstantTimeCompare(a, b) == 1
}

// Fingerprint is a SHA-256 over both public keys, in hex, for display and
// logs.
func (k IdentityKey) Fingerprint() string {
	h := sha256.New()
	h.Write([]byte("PhoneX ratchet identity fingerprint v1\x00"))
	h.Write(k.Signing)
	if k.DH != nil {
		h.Write(k.DH.Bytes())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// String shows the fingerprint.
func (k IdentityKey) String() string { return "IdentityKey(" + k.Fingerprint()[:16] + ")" }

func bindingMessage(pub *ecdh.PublicKey) []byte {
	return append([]byte(ctxIdentityBinding), encodeEC(pub.Bytes())...)
}

// IdentityKeyPair is a device's private identity: its Ed25519 signing key and
// its X25519 identity key, as certified by the device layer.
type IdentityKeyPair struct {
	signing ed25519.PrivateKey
	dh      *ecdh.PrivateKey
	public  IdentityKey
}

// NewIdentityKeyPair wraps the device's two private keys. The keys are used
// as given.
func NewIdentityKeyPair(signing ed25519.PrivateKey, dhKey *ecdh.PrivateKey) (*IdentityKeyPair, error) {
	if len(signing) != ed25519.PrivateKeySize || dhKey == nil || dhKey.Curve() != ecdh.X25519() {
		return nil, errors.New("ratchet: identity needs an Ed25519 and an X25519 private key")
	}
	pub := signing.Public().(ed25519.PublicKey)
	k := &IdentityKeyPair{signing: signing, dh: dhKey}
	k.public = IdentityKey{
		Signing: pub,
		DH:      dhKey.PublicKey(),
		Binding: ed25519.Sign(signing, bindingMessage(dhKey.PublicKey())),
	}
	return k, nil
}

// Public returns the public identity with its binding signature.
func (k *IdentityKeyPair) Public() IdentityKey { return k.public }

func (k *IdentityKeyPair) sign(ctx string, msg []byte) []byte {
	return ed25519.Sign(k.signing, append([]byte(ctx), msg...))
}

// String redacts the private keys.
func (k *IdentityKeyPair) String() string {
	return "IdentityKeyPair{" + k.public.String() + ", private REDACTED}"
}

// LogValue redacts the private keys.
func (k *IdentityKeyPair) LogValue() slog.Value {
	return slog.StringValue(k.String())
}
