package filecrypt

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
)

// Kinds of wrapped file keys.
const (
	// WrapSlot: wrapped to a recipient device's half-key slot.
	WrapSlot byte = 1
	// WrapOwn: wrapped to one of the sender's other devices with its
	// message key (HPKE MLKEM768X25519).
	WrapOwn byte = 2
)

const (
	fileKeySize      = 32
	wrappedSize      = fileKeySize + tagSize
	ownWrappedSize   = 1120 + wrappedSize // HPKE enc || ciphertext
	labelWrapT       = "phonex/v1/file/wrap-transcript\x00"
	labelWrapKey     = "phonex/v1/file/wrap-key\x00"
	labelOwnT        = "phonex/v1/file/own-transcript\x00"
	labelOwnWrapInfo = "phonex/v1/file/own-wrap\x00"
)

// Wrap is the file key wrapped for one device.
type Wrap struct {
	Kind   byte
	Device string // the device that can unwrap it
	// Slot wraps only: the slot, the sender's ephemeral X25519 key and the
	// ML-KEM-768 ciphertext to the slot.
	SlotID        SlotID
	Ephemeral     []byte
	KEMCiphertext []byte
	// Sealed is AES-256-GCM(KEK, file key) for slot wraps, HPKE enc ||
	// ciphertext for own-device wraps.
	Sealed []byte
}

// slotTranscript binds a slot wrap to both identities, the slot and its
// keys, the header core and the sender's key shares.
func slotTranscript(sender, recipient string, id SlotID, coreHash []byte, slotX, slotKEM, eph, kemCT []byte) []byte {
	w := writer{b: []byte(labelWrapT)}
	w.str(sender)
	w.str(recipient)
	w.fixed(id[:])
	w.fixed(coreHash)
	w.fixed(slotX)
	kh := sha256.Sum256(slotKEM)
	w.fixed(kh[:])
	w.fixed(eph)
	w.fixed(kemCT)
	t := sha256.Sum256(w.b)
	return t[:]
}

// slotKEK combines the two shared secrets the way hybrid KEM combiners do
// (ML-KEM first, then X25519, with the ciphertexts and public keys bound
// through the transcript; cf. draft-ietf-tls-ecdhe-mlkem §3), keyed by both
// slot nonces so that only a sender who completed both handout steps can
// produce it: HKDF-SHA256 (RFC 5869) with salt nonce1||nonce2.
func slotKEK(ssKEM, ssX, nonce1, nonce2, transcript []byte) ([]byte, error) {
	ikm := append(append([]byte(nil), ssKEM...), ssX...)
	salt := append(append([]byte(nil), nonce1...), nonce2...)
	return hkdf.Key(sha256.New, ikm, salt, labelWrapKey+string(transcript), 32)
}

// wrapToSlot wraps fileKey to a slot: fresh X25519 key share and ML-KEM
// encapsulation, KEK from slotKEK, AES-256-GCM with the transcript as
// associated data. The KEK is fresh per wrap, so the zero nonce is safe.
func wrapToSlot(sender string, coreHash []byte, s *Slot, nonce2, fileKey []byte) (*Wrap, error) {
	p := s.Public
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	slotX, err := ecdh.X25519().NewPublicKey(p.X25519)
	if err != nil {
		return nil, fmt.Errorf("slot x25519 key: %v: %w", err, ErrMalformed)
	}
	ssX, err := eph.ECDH(slotX)
	if err != nil {
		return nil, fmt.Errorf("x25519: %v: %w", err, ErrMalformed)
	}
	ek, err := mlkem.NewEncapsulationKey768(p.MLKEM)
	if err != nil {
		return nil, fmt.Errorf("slot ml-kem key: %v: %w", err, ErrMalformed)
	}
	ssK, ct := ek.Encapsulate()
	return sealSlotWrap(sender, coreHash, p, s.nonce1, nonce2, eph.PublicKey().Bytes(), ssX, ssK, ct, fileKey)
}

func sealSlotWrap(sender string, coreHash []byte, p *SlotPublic, nonce1, nonce2, eph, ssX, ssK, ct, fileKey []byte) (*Wrap, error) {
	t := slotTranscript(sender, p.Recipient, p.ID, coreHash, p.X25519, p.MLKEM, eph, ct)
	kek, err := slotKEK(ssK, ssX, nonce1, nonce2, t)
	if err != nil {
		return nil, err
	}
	return &Wrap{
		Kind: WrapSlot, Device: p.Recipient, SlotID: p.ID,
		Ephemeral: eph, KEMCiphertext: ct,
		Sealed: mustGCM(kek).Seal(nil, make([]byte, nonceSize), fileKey, t),
	}, nil
}

// unwrapSlot is the recipient's side of wrapToSlot.
func unwrapSlot(sender string, coreHash []byte, s *SlotSecret, w *Wrap) ([]byte, error) {
	xk, err := ecdh.X25519().NewPrivateKey(s.x25519)
	if err != nil {
		return nil, fmt.Errorf("slot x25519 key: %w", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(s.seed)
	if err != nil {
		return nil, fmt.Errorf("slot ml-kem key: %w", err)
	}
	eph, err := ecdh.X25519().NewPublicKey(w.Ephemeral)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %v: %w", err, ErrUnwrap)
	}
	ssX, err := xk.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("x25519: %v: %w", err, ErrUnwrap)
	}
	ssK, err := dk.Decapsulate(w.KEMCiphertext)
	if err != nil {
		return nil, fmt.Errorf("ml-kem: %v: %w", err, ErrUnwrap)
	}
	t := slotTranscript(sender, s.Recipient, s.ID, coreHash, xk.PublicKey().Bytes(), dk.EncapsulationKey().Bytes(), w.Ephemeral, w.KEMCiphertext)
	kek, err := slotKEK(ssK, ssX, s.nonce1, s.nonce2, t)
	if err != nil {
		return nil, err
	}
	fk, err := mustGCM(kek).Open(nil, make([]byte, nonceSize), w.Sealed, t)
	if err != nil {
		return nil, ErrUnwrap
	}
	return fk, nil
}

func ownInfo(sender, recipient string, coreHash []byte) []byte {
	w := writer{b: []byte(labelOwnT)}
	w.str(sender)
	w.str(recipient)
	w.fixed(coreHash)
	t := sha256.Sum256(w.b)
	return append([]byte(labelOwnWrapInfo), t[:]...)
}

// wrapToOwn seals fileKey to one of the sender's devices with HPKE (RFC 9180
// §6.1, base mode, MLKEM768X25519, HKDF-SHA256, AES-256-GCM), the info
// binding both devices and the header core.
func wrapToOwn(sender string, coreHash []byte, d OwnDevice, fileKey []byte) (*Wrap, error) {
	if d.KEM == nil || d.KEM.KEM().ID() != hpke.MLKEM768X25519().ID() {
		return nil, fmt.Errorf("wrap to %s: need an MLKEM768X25519 key: %w", d.Device, ErrVersion)
	}
	ct, err := hpke.Seal(d.KEM, hpke.HKDFSHA256(), hpke.AES256GCM(), ownInfo(sender, d.Device, coreHash), fileKey)
	if err != nil {
		return nil, fmt.Errorf("wrap to %s: %w", d.Device, err)
	}
	return &Wrap{Kind: WrapOwn, Device: d.Device, Sealed: ct}, nil
}

func unwrapOwn(sender string, coreHash []byte, me string, k hpke.PrivateKey, w *Wrap) ([]byte, error) {
	fk, err := hpke.Open(k, hpke.HKDFSHA256(), hpke.AES256GCM(), ownInfo(sender, me, coreHash), w.Sealed)
	if err != nil {
		return nil, ErrUnwrap
	}
	return fk, nil
}
