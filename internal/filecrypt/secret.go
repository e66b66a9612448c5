package filecrypt

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"
	"time"
)

const secretVersion = 1

// SlotSecret is the private half of a slot, kept by the recipient device
// that made it. Once a file wrapped to the slot has been downloaded and
// verified, Destroy it: from then on a leak of the device's keys no longer
// opens that file (forward secrecy per file). MarshalBinary is for the
// device's encrypted database only; a stored copy must be deleted with it.
type SlotSecret struct {
	ID        SlotID
	Recipient string // the device that made the slot
	Contact   string // the account it was made for
	Expires   time.Time

	x25519    []byte // X25519 private scalar
	seed      []byte // ML-KEM-768 seed d||z (FIPS 203 §7.1)
	nonce1    []byte
	nonce2    []byte
	destroyed bool
}

func (s *SlotSecret) publicKeys() (x, k []byte, err error) {
	xk, err := ecdh.X25519().NewPrivateKey(s.x25519)
	if err != nil {
		return nil, nil, fmt.Errorf("slot x25519 key: %w", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(s.seed)
	if err != nil {
		return nil, nil, fmt.Errorf("slot ml-kem key: %w", err)
	}
	return xk.PublicKey().Bytes(), dk.EncapsulationKey().Bytes(), nil
}

// Destroy overwrites the private keys and nonces; the slot opens nothing
// afterwards (ErrSlotDestroyed). Go may have left copies of the expanded
// keys in freed memory; the bytes this value holds are gone.
func (s *SlotSecret) Destroy() {
	for _, b := range [][]byte{s.x25519, s.seed, s.nonce1, s.nonce2} {
		clear(b)
	}
	s.x25519, s.seed, s.nonce1, s.nonce2 = nil, nil, nil, nil
	s.destroyed = true
}

// Destroyed reports whether Destroy was called.
func (s *SlotSecret) Destroyed() bool { return s.destroyed }

// MarshalBinary encodes the secret for the device's encrypted store.
func (s *SlotSecret) MarshalBinary() ([]byte, error) {
	if s.destroyed {
		return nil, ErrSlotDestroyed
	}
	var w writer
	w.u8(secretVersion)
	w.fixed(s.ID[:])
	w.str(s.Recipient)
	w.str(s.Contact)
	w.u64(uint64(s.Expires.Unix()))
	w.fixed(s.x25519)
	w.fixed(s.seed)
	w.fixed(s.nonce1)
	w.fixed(s.nonce2)
	return w.b, nil
}

// ParseSlotSecret decodes MarshalBinary's output.
func ParseSlotSecret(b []byte) (*SlotSecret, error) {
	r := reader{b: b}
	if v := r.u8("secret version"); r.err == nil && v != secretVersion {
		return nil, fmt.Errorf("slot secret version %d: %w", v, ErrVersion)
	}
	s := &SlotSecret{}
	copy(s.ID[:], r.take(SlotIDSize, "slot id"))
	s.Recipient = r.str(maxIdentity, "recipient")
	s.Contact = r.str(maxIdentity, "contact")
	s.Expires = time.Unix(int64(r.u64("expires")), 0).UTC()
	s.x25519 = r.fixed(x25519Size, "x25519 key")
	s.seed = r.fixed(mlkem.SeedSize, "ml-kem seed")
	s.nonce1 = r.fixed(slotNonceSize, "nonce1")
	s.nonce2 = r.fixed(slotNonceSize, "nonce2")
	if err := r.end("slot secret"); err != nil {
		return nil, err
	}
	if err := checkDevice(s.Recipient); err != nil {
		return nil, err
	}
	if err := checkAccount(s.Contact); err != nil {
		return nil, err
	}
	if _, _, err := s.publicKeys(); err != nil {
		return nil, fmt.Errorf("slot secret: %v: %w", err, ErrMalformed)
	}
	return s, nil
}
