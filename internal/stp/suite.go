package stp

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"hash"
)

// Algorithm versions carried in signatureVersion, easymBlockVersion (and
// KeySlot.version), esymBlockVersion and hmacVersion. Value 1 is the draft's
// default, used when the field is omitted in STPSimple v1 and v2.
const (
	// SigRSA is the draft's "RSA signature": RSASSA-PKCS1-v1_5. The draft
	// does not name the hash for STPSimple (SHA1withRSA is named only for
	// the S/MIME protocol v1); SHA-256 is used.
	SigRSA int32 = 1
	// SigEd25519 is Ed25519 (RFC 8032) over the covered bytes.
	SigEd25519 int32 = 2

	// KeyRSAOAEP is RSA/ECB/OAEPWithSHA1AndMGF1Padding (draft §2.3):
	// RSAES-OAEP with SHA-1 and MGF1-SHA-1, empty label.
	KeyRSAOAEP int32 = 1
	// KeyHPKE is HPKE base mode (RFC 9180) with the MLKEM768-X25519 KEM,
	// HKDF-SHA256 and AES-256-GCM; the block is enc||ciphertext.
	KeyHPKE int32 = 2

	// SymAESGCM is AES/GCM/NoPadding with a 256-bit key, a 12-byte IV and
	// a 16-byte tag (draft §2.3); esymBlock = IV||ciphertext||tag.
	SymAESGCM int32 = 1

	// MACSHA1 is HmacSHA1 (draft §2.3 default).
	MACSHA1 int32 = 1
	// MACSHA256 is HMAC-SHA-256.
	MACSHA256 int32 = 2
)

const (
	symKeySize = 32 // AES-256
	macKeySize = 32
	ivSize     = 12
)

// hpkeInfo binds HPKE-sealed key blocks to this use.
var hpkeInfo = []byte("PhoneX STP key block")

// suite is the set of algorithm versions one message uses.
type suite struct {
	sig, key, sym, mac int32
}

// pick returns the field's value, or def when the field is omitted.
func pick(field *int32, def int32) int32 {
	if field == nil {
		return def
	}
	return *field
}

// signatureVersionOf names the signature scheme of signer's key.
func signatureVersionOf(signer crypto.Signer) (int32, error) {
	switch signer.Public().(type) {
	case *rsa.PublicKey:
		return SigRSA, nil
	case ed25519.PublicKey:
		return SigEd25519, nil
	default:
		return 0, fmt.Errorf("signer key type %T: %w", signer.Public(), ErrUnsupported)
	}
}

// sign signs the covered bytes with the scheme matching signer's key.
func sign(signer crypto.Signer, covered []byte) (int32, []byte, error) {
	switch signer.Public().(type) {
	case *rsa.PublicKey:
		d := sha256.Sum256(covered)
		sig, err := signer.Sign(rand.Reader, d[:], crypto.SHA256)
		if err != nil {
			return 0, nil, fmt.Errorf("RSA sign: %w", err)
		}
		return SigRSA, sig, nil
	case ed25519.PublicKey:
		sig, err := signer.Sign(rand.Reader, covered, crypto.Hash(0))
		if err != nil {
			return 0, nil, fmt.Errorf("Ed25519 sign: %w", err)
		}
		return SigEd25519, sig, nil
	default:
		return 0, nil, fmt.Errorf("sign: key type %T: %w", signer.Public(), ErrUnsupported)
	}
}

// verify checks sig over covered with the key of cert, which must match
// the scheme named by version.
func verify(version int32, cert *x509.Certificate, covered, sig []byte) error {
	switch version {
	case SigRSA:
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("signature version %d needs an RSA key, sender has %T: %w", version, cert.PublicKey, ErrBadSignature)
		}
		d := sha256.Sum256(covered)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
			return ErrBadSignature
		}
		return nil
	case SigEd25519:
		pub, ok := cert.PublicKey.(ed25519.PublicKey)
		if !ok {
			return fmt.Errorf("signature version %d needs an Ed25519 key, sender has %T: %w", version, cert.PublicKey, ErrBadSignature)
		}
		if !ed25519.Verify(pub, covered, sig) {
			return ErrBadSignature
		}
		return nil
	default:
		return fmt.Errorf("signature version %d: %w", version, ErrUnsupported)
	}
}

// newKeys draws a fresh encKey||macKey.
func newKeys() []byte {
	k := make([]byte, symKeySize+macKeySize)
	rand.Read(k)
	return k
}

// Recipient is one device a message is encrypted to.
type Recipient struct {
	// Address is the recipient's address, the STP destination (or the
	// key slot's recipient).
	Address string
	// Certificate carries the RSA public key for RSA-OAEP key blocks.
	Certificate *x509.Certificate
	// KEM is the MLKEM768X25519 public key for HPKE key blocks.
	KEM hpke.PublicKey
}

// wrapKeys seals encKey||macKey to the recipient with the given scheme.
func wrapKeys(version int32, to *Recipient, keys []byte) ([]byte, error) {
	switch version {
	case KeyRSAOAEP:
		if to.Certificate == nil {
			return nil, fmt.Errorf("wrap keys for %s: no certificate", to.Address)
		}
		pub, ok := to.Certificate.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("wrap keys for %s: RSA-OAEP needs an RSA key, have %T: %w", to.Address, to.Certificate.PublicKey, ErrUnsupported)
		}
		b, err := rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, keys, nil)
		if err != nil {
			return nil, fmt.Errorf("wrap keys for %s: %w", to.Address, err)
		}
		return b, nil
	case KeyHPKE:
		if to.KEM == nil || to.KEM.KEM().ID() != hpke.MLKEM768X25519().ID() {
			return nil, fmt.Errorf("wrap keys for %s: HPKE needs an MLKEM768X25519 key: %w", to.Address, ErrUnsupported)
		}
		b, err := hpke.Seal(to.KEM, hpke.HKDFSHA256(), hpke.AES256GCM(), hpkeInfo, keys)
		if err != nil {
			return nil, fmt.Errorf("wrap keys for %s: %w", to.Address, err)
		}
		return b, nil
	default:
		return nil, fmt.Errorf("wrap keys: version %d: %w", version, ErrUnsupported)
	}
}

// unwrapKeys opens a key block and splits it into encKey and macKey.
func unwrapKeys(version int32, r *Receiver, block []byte) (encKey, macKey []byte, err error) {
	var keys []byte
	switch version {
	case KeyRSAOAEP:
		if r.RSAKey == nil {
			return nil, nil, fmt.Errorf("unwrap keys: no RSA key: %w", ErrDecrypt)
		}
		keys, err = rsa.DecryptOAEP(sha1.New(), nil, r.RSAKey, block, nil)
	case KeyHPKE:
		if r.KEMKey == nil {
			return nil, nil, fmt.Errorf("unwrap keys: no KEM key: %w", ErrDecrypt)
		}
		if r.KEMKey.KEM().ID() != hpke.MLKEM768X25519().ID() {
			return nil, nil, fmt.Errorf("unwrap keys: KEM %#x: %w", r.KEMKey.KEM().ID(), ErrUnsupported)
		}
		keys, err = hpke.Open(r.KEMKey, hpke.HKDFSHA256(), hpke.AES256GCM(), hpkeInfo, block)
	default:
		return nil, nil, fmt.Errorf("unwrap keys: version %d: %w", version, ErrUnsupported)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("unwrap keys: %w", ErrDecrypt)
	}
	if len(keys) != symKeySize+macKeySize {
		return nil, nil, fmt.Errorf("unwrap keys: %d key bytes: %w", len(keys), ErrDecrypt)
	}
	return keys[:symKeySize], keys[symKeySize:], nil
}

func macHash(version int32) (func() hash.Hash, error) {
	switch version {
	case MACSHA1:
		return sha1.New, nil
	case MACSHA256:
		return sha256.New, nil
	default:
		return nil, fmt.Errorf("hmac version %d: %w", version, ErrUnsupported)
	}
}

func computeMAC(version int32, key, covered []byte) ([]byte, error) {
	h, err := macHash(version)
	if err != nil {
		return nil, err
	}
	m := hmac.New(h, key)
	m.Write(covered)
	return m.Sum(nil), nil
}

func checkMAC(version int32, key, covered, got []byte) error {
	want, err := computeMAC(version, key, covered)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, got) {
		return ErrBadMAC
	}
	return nil
}

// sealPayload returns iv and esymBlock = iv||AES-256-GCM(encKey, iv, payload).
func sealPayload(version int32, encKey, payload []byte) (iv, block []byte, err error) {
	if version != SymAESGCM {
		return nil, nil, fmt.Errorf("seal payload: version %d: %w", version, ErrUnsupported)
	}
	aead, err := newGCM(encKey)
	if err != nil {
		return nil, nil, err
	}
	block = make([]byte, ivSize, ivSize+len(payload)+aead.Overhead())
	rand.Read(block[:ivSize])
	block = aead.Seal(block, block[:ivSize], payload, nil)
	return block[:ivSize:ivSize], block, nil
}

// openPayload checks that esymBlock starts with iv and decrypts it.
func openPayload(version int32, encKey, iv, block []byte) ([]byte, error) {
	if version != SymAESGCM {
		return nil, fmt.Errorf("open payload: version %d: %w", version, ErrUnsupported)
	}
	if len(iv) != ivSize || len(block) < ivSize || !hmac.Equal(block[:ivSize], iv) {
		return nil, fmt.Errorf("open payload: IV does not match the symmetric block: %w", ErrMalformed)
	}
	aead, err := newGCM(encKey)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, iv, block[ivSize:], nil)
	if err != nil {
		return nil, fmt.Errorf("open payload: %w", ErrDecrypt)
	}
	return pt, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES: %w", err)
	}
	return cipher.NewGCM(b)
}

// senderCert looks the sender's certificate up.
func senderCert(r *Receiver, sender, certVersion string) (*x509.Certificate, error) {
	if r.SenderCertificate == nil {
		return nil, fmt.Errorf("no certificate source: %w", ErrUnknownSender)
	}
	c, err := r.SenderCertificate(sender, certVersion)
	if err != nil {
		return nil, fmt.Errorf("certificate of %s: %v: %w", sender, err, ErrUnknownSender)
	}
	if c == nil {
		return nil, fmt.Errorf("certificate of %s: %w", sender, ErrUnknownSender)
	}
	return c, nil
}
