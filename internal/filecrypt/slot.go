package filecrypt

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"time"
)

// Half-key slots (DESIGN.md §6; the protocol is in docs/files.md).
const (
	slotVersion   = 1
	sealedVersion = 1
	// SlotIDSize is the size of a slot id.
	SlotIDSize = 16
	// slotNonceSize is the size of nonce1 and nonce2.
	slotNonceSize = 32
	x25519Size    = 32
	maxContactDev = 32
	maxIdentity   = 160 // user (64) @ domain (<=63+) / device (32)
	// DefaultSlotTTL is how long a slot stays usable by default.
	DefaultSlotTTL = 30 * 24 * time.Hour
	// DefaultSlots is how many ready slots a device keeps per contact
	// (DESIGN.md §6).
	DefaultSlots = 4
)

var (
	labelSlotSig   = []byte("phonex/v1/file/slot-sig\x00")
	labelSlotSeal  = []byte("phonex/v1/file/slot-seal\x00")
	labelProof     = []byte("phonex/v1/file/slot-proof\x00")
	labelProofHash = []byte("phonex/v1/file/slot-proof-hash\x00")
)

// SlotID names a slot; it is random and public.
type SlotID [SlotIDSize]byte

// SlotPublic is the public half of a slot, signed by the recipient device
// that made it: the keys a sender uses, and the identities and certificates
// they are bound to.
type SlotPublic struct {
	ID SlotID
	// Recipient is the device that made the slot and alone can use the
	// file key wrapped to it ("user@domain/device").
	Recipient string
	// RecipientCert is the CertHash of the recipient's certificate.
	RecipientCert [32]byte
	// Contact is the account allowed to send with the slot ("user@domain").
	Contact string
	// ContactCerts are the CertHashes of the contact's devices the slot is
	// sealed to.
	ContactCerts [][32]byte
	// Created and Expires bound the slot's use (seconds precision).
	Created, Expires time.Time
	// X25519 and MLKEM are the slot's public keys: 32 bytes, and an
	// ML-KEM-768 encapsulation key (FIPS 203) of 1184 bytes.
	X25519 []byte
	MLKEM  []byte
	// SigAlg and Signature are the recipient's signature over the rest.
	SigAlg    byte
	Signature []byte
}

func (p *SlotPublic) appendSigned(w *writer) {
	w.u8(slotVersion)
	w.fixed(p.ID[:])
	w.str(p.Recipient)
	w.fixed(p.RecipientCert[:])
	w.str(p.Contact)
	w.u8(byte(len(p.ContactCerts)))
	for _, h := range p.ContactCerts {
		w.fixed(h[:])
	}
	w.u64(uint64(p.Created.Unix()))
	w.u64(uint64(p.Expires.Unix()))
	w.fixed(p.X25519)
	w.fixed(p.MLKEM)
}

func (p *SlotPublic) signedBytes() []byte {
	w := writer{b: append([]byte(nil), labelSlotSig...)}
	p.appendSigned(&w)
	return w.b
}

// MarshalBinary encodes the slot: the signed fields, then the signature.
func (p *SlotPublic) MarshalBinary() ([]byte, error) {
	var w writer
	p.appendSigned(&w)
	w.u8(p.SigAlg)
	w.vec(p.Signature)
	return w.b, nil
}

// ParseSlotPublic decodes a slot. It checks the form only; Verify checks the
// signature.
func ParseSlotPublic(b []byte) (*SlotPublic, error) {
	r := reader{b: b}
	if v := r.u8("slot version"); r.err == nil && v != slotVersion {
		return nil, fmt.Errorf("slot version %d: %w", v, ErrVersion)
	}
	p := &SlotPublic{}
	copy(p.ID[:], r.take(SlotIDSize, "slot id"))
	p.Recipient = r.str(maxIdentity, "recipient")
	copy(p.RecipientCert[:], r.take(32, "recipient certificate hash"))
	p.Contact = r.str(maxIdentity, "contact")
	n := int(r.u8("contact certificate count"))
	if r.err == nil && (n == 0 || n > maxContactDev) {
		r.fail("contact certificate count %d", n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		var h [32]byte
		copy(h[:], r.take(32, "contact certificate hash"))
		p.ContactCerts = append(p.ContactCerts, h)
	}
	p.Created = time.Unix(int64(r.u64("created")), 0).UTC()
	p.Expires = time.Unix(int64(r.u64("expires")), 0).UTC()
	p.X25519 = r.fixed(x25519Size, "slot x25519 key")
	p.MLKEM = r.fixed(mlkem.EncapsulationKeySize768, "slot ml-kem key")
	p.SigAlg = r.u8("signature algorithm")
	p.Signature = r.vec(maxSigSize, "signature")
	if err := r.end("slot"); err != nil {
		return nil, err
	}
	if err := checkDevice(p.Recipient); err != nil {
		return nil, fmt.Errorf("slot recipient: %w", err)
	}
	if err := checkAccount(p.Contact); err != nil {
		return nil, fmt.Errorf("slot contact: %w", err)
	}
	if !p.Expires.After(p.Created) {
		return nil, fmt.Errorf("slot expires before it is created: %w", ErrMalformed)
	}
	if _, err := ecdh.X25519().NewPublicKey(p.X25519); err != nil {
		return nil, fmt.Errorf("slot x25519 key: %v: %w", err, ErrMalformed)
	}
	if _, err := mlkem.NewEncapsulationKey768(p.MLKEM); err != nil {
		return nil, fmt.Errorf("slot ml-kem key: %v: %w", err, ErrMalformed)
	}
	return p, nil
}

// Verify checks the recipient's signature with its certificate, which the
// caller has verified against the recipient's CA.
func (p *SlotPublic) Verify(recipientCert *x509.Certificate) error {
	if err := verifySigned(recipientCert, p.Recipient, p.RecipientCert, p.SigAlg, p.signedBytes(), p.Signature); err != nil {
		return fmt.Errorf("slot: %w", err)
	}
	return nil
}

// SealTo is one device of the contact a slot is sealed to.
type SealTo struct {
	// Device is "user@domain/device" of the contact's device.
	Device string
	// Cert is its certificate (bound into the slot by its hash).
	Cert *x509.Certificate
	// KEM is its message key (HPKE MLKEM768X25519), whose signature by the
	// device the caller has checked.
	KEM hpke.PublicKey
}

// SlotMaker is the recipient device that makes slots.
type SlotMaker struct {
	Device string            // "user@domain/device"
	Cert   *x509.Certificate // its certificate
	Signer crypto.Signer     // its identity key
}

// SlotOffer is what the recipient uploads to the node for one slot.
type SlotOffer struct {
	ID SlotID
	// Sealed is handed out to the contact in the first step.
	Sealed []byte
	// ProofHash is all the node keeps of nonce1 (VerifySlotProof).
	ProofHash [32]byte
	// Nonce2 is handed out in the second step, once the proof verified.
	Nonce2 []byte
}

// NewSlot makes one slot of maker for the contact account, sealed to the
// contact's devices, usable from now for ttl. The SlotSecret stays on the
// maker's device until Destroy.
func NewSlot(maker SlotMaker, contact string, to []SealTo, now time.Time, ttl time.Duration) (*SlotOffer, *SlotSecret, error) {
	if err := checkDevice(maker.Device); err != nil {
		return nil, nil, fmt.Errorf("new slot: %w", err)
	}
	if err := checkAccount(contact); err != nil {
		return nil, nil, fmt.Errorf("new slot: %w", err)
	}
	if len(to) == 0 || len(to) > maxContactDev {
		return nil, nil, fmt.Errorf("new slot: %d contact devices (1-%d): %w", len(to), maxContactDev, ErrMalformed)
	}
	if ttl < time.Second {
		return nil, nil, fmt.Errorf("new slot: lifetime %v: %w", ttl, ErrMalformed)
	}
	s := &SlotSecret{
		Recipient: maker.Device, Contact: contact,
		x25519: make([]byte, x25519Size), seed: make([]byte, mlkem.SeedSize),
		nonce1: make([]byte, slotNonceSize), nonce2: make([]byte, slotNonceSize),
	}
	rand.Read(s.ID[:])
	rand.Read(s.x25519)
	rand.Read(s.seed)
	rand.Read(s.nonce1)
	rand.Read(s.nonce2)
	xpub, kemPub, err := s.publicKeys()
	if err != nil {
		return nil, nil, fmt.Errorf("new slot: %w", err)
	}
	created := now.Truncate(time.Second).UTC()
	p := &SlotPublic{
		ID: s.ID, Recipient: maker.Device, RecipientCert: CertHash(maker.Cert), Contact: contact,
		Created: created, Expires: created.Add(ttl), X25519: xpub, MLKEM: kemPub,
	}
	s.Expires = p.Expires
	for _, d := range to {
		if err := checkDevice(d.Device); err != nil || accountOf(d.Device) != contact {
			return nil, nil, fmt.Errorf("new slot: device %q is not of %s: %w", d.Device, contact, ErrMalformed)
		}
		p.ContactCerts = append(p.ContactCerts, CertHash(d.Cert))
	}
	if p.SigAlg, p.Signature, err = sign(maker.Signer, p.signedBytes()); err != nil {
		return nil, nil, fmt.Errorf("new slot: %w", err)
	}
	sealed, err := sealSlot(p, s.nonce1, to)
	if err != nil {
		return nil, nil, fmt.Errorf("new slot: %w", err)
	}
	proof := ProveSlot(s.ID, s.nonce1)
	return &SlotOffer{ID: s.ID, Sealed: sealed, ProofHash: SlotProofHash(s.ID, proof), Nonce2: append([]byte(nil), s.nonce2...)}, s, nil
}

// NewSlots makes n slots of maker for contact (NewSlot), for a first supply
// or a refill.
func NewSlots(maker SlotMaker, contact string, to []SealTo, now time.Time, ttl time.Duration, n int) ([]*SlotOffer, []*SlotSecret, error) {
	if n < 1 || n > 1024 {
		return nil, nil, fmt.Errorf("new slots: %d slots (1-1024): %w", n, ErrMalformed)
	}
	offers := make([]*SlotOffer, 0, n)
	secrets := make([]*SlotSecret, 0, n)
	for range n {
		o, s, err := NewSlot(maker, contact, to, now, ttl)
		if err != nil {
			for _, s := range secrets {
				s.Destroy()
			}
			return nil, nil, err
		}
		offers = append(offers, o)
		secrets = append(secrets, s)
	}
	return offers, secrets, nil
}

// sealSlot encrypts nonce1 || slot once under a random key, and seals that
// key to each contact device with HPKE (RFC 9180 §6.1, base mode,
// MLKEM768X25519, HKDF-SHA256, AES-256-GCM). The random key encrypts one
// message only, so the all-zero GCM nonce is safe.
func sealSlot(p *SlotPublic, nonce1 []byte, to []SealTo) ([]byte, error) {
	body, _ := p.MarshalBinary()
	key := make([]byte, 32)
	rand.Read(key)
	var w writer
	w.u8(sealedVersion)
	w.fixed(p.ID[:])
	aad := append([]byte(nil), w.b...)
	w.u8(byte(len(to)))
	for _, d := range to {
		if d.KEM == nil || d.KEM.KEM().ID() != hpke.MLKEM768X25519().ID() {
			return nil, fmt.Errorf("seal slot to %s: need an MLKEM768X25519 key: %w", d.Device, ErrVersion)
		}
		ct, err := hpke.Seal(d.KEM, hpke.HKDFSHA256(), hpke.AES256GCM(), sealInfo(p.ID, d.Device), key)
		if err != nil {
			return nil, fmt.Errorf("seal slot to %s: %w", d.Device, err)
		}
		w.str(d.Device)
		w.vec(ct)
	}
	a := mustGCM(key)
	pt := append(append([]byte(nil), nonce1...), body...)
	w.vec(a.Seal(nil, make([]byte, nonceSize), pt, aad))
	return w.b, nil
}

func sealInfo(id SlotID, device string) []byte {
	w := writer{b: append([]byte(nil), labelSlotSeal...)}
	w.fixed(id[:])
	w.str(device)
	return w.b
}

func mustGCM(key []byte) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic("filecrypt: AES key of " + fmt.Sprint(len(key)) + " bytes") // callers pass 32 bytes
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		panic(err)
	}
	return a
}

// hpkeSealedSize is enc (1120) plus a 32-byte key and its tag.
const hpkeSealedSize = 1120 + 32 + tagSize

// SealedSlot is a decoded sealed slot, before opening.
type SealedSlot struct {
	ID      SlotID
	Devices []string
	keys    [][]byte
	aad     []byte
	body    []byte
}

// ParseSealedSlot decodes what the node hands out in the first step.
func ParseSealedSlot(b []byte) (*SealedSlot, error) {
	r := reader{b: b}
	if v := r.u8("sealed slot version"); r.err == nil && v != sealedVersion {
		return nil, fmt.Errorf("sealed slot version %d: %w", v, ErrVersion)
	}
	s := &SealedSlot{}
	copy(s.ID[:], r.take(SlotIDSize, "slot id"))
	if r.err != nil {
		return nil, r.err
	}
	s.aad = append([]byte(nil), b[:1+SlotIDSize]...)
	n := int(r.u8("device count"))
	if r.err == nil && (n == 0 || n > maxContactDev) {
		r.fail("device count %d", n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		d := r.str(maxIdentity, "device")
		k := r.vec(hpkeSealedSize, "sealed key")
		if r.err == nil && len(k) != hpkeSealedSize {
			r.fail("sealed key: %d bytes", len(k))
		}
		s.Devices = append(s.Devices, d)
		s.keys = append(s.keys, k)
	}
	s.body = r.vec(1<<16-1, "sealed body")
	if err := r.end("sealed slot"); err != nil {
		return nil, err
	}
	return s, nil
}

// Slot is a slot opened and verified by the contact's device: what it needs
// to prove it opened the slot and to wrap a file key.
type Slot struct {
	Public *SlotPublic
	nonce1 []byte
}

// SlotOpener is the contact's device opening a slot.
type SlotOpener struct {
	Device string // "user@domain/device"
	Cert   *x509.Certificate
	KEM    hpke.PrivateKey // its message key
}

// Open opens the sealed slot with me's message key and checks it: the
// maker's signature (recipientCert, verified by the caller against the
// maker's CA), that it names me's account and certificate, and that it has
// not expired at now.
func (s *SealedSlot) Open(me SlotOpener, recipientCert *x509.Certificate, now time.Time) (*Slot, error) {
	i := -1
	for j, d := range s.Devices {
		if d == me.Device {
			i = j
		}
	}
	if i < 0 || me.KEM == nil {
		return nil, fmt.Errorf("open slot: %w", ErrSealed)
	}
	key, err := hpke.Open(me.KEM, hpke.HKDFSHA256(), hpke.AES256GCM(), sealInfo(s.ID, me.Device), s.keys[i])
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("open slot: %w", ErrSealed)
	}
	pt, err := mustGCM(key).Open(nil, make([]byte, nonceSize), s.body, s.aad)
	if err != nil || len(pt) < slotNonceSize {
		return nil, fmt.Errorf("open slot body: %w", ErrSealed)
	}
	p, err := ParseSlotPublic(pt[slotNonceSize:])
	if err != nil {
		return nil, fmt.Errorf("open slot: %w", err)
	}
	if p.ID != s.ID {
		return nil, fmt.Errorf("open slot: inner id differs: %w", ErrSlotBinding)
	}
	if err := p.Verify(recipientCert); err != nil {
		return nil, fmt.Errorf("open slot: %w", err)
	}
	if p.Contact != accountOf(me.Device) {
		return nil, fmt.Errorf("open slot: made for %s: %w", p.Contact, ErrSlotBinding)
	}
	mine := false
	if me.Cert != nil {
		h := CertHash(me.Cert)
		for _, c := range p.ContactCerts {
			mine = mine || constantEqual(c[:], h[:])
		}
	}
	if !mine {
		return nil, fmt.Errorf("open slot: not bound to this device's certificate: %w", ErrSlotBinding)
	}
	if !now.Before(p.Expires) {
		return nil, fmt.Errorf("open slot: expired %s: %w", p.Expires.Format(time.RFC3339), ErrSlotExpired)
	}
	return &Slot{Public: p, nonce1: append([]byte(nil), pt[:slotNonceSize]...)}, nil
}

// Proof is what the sender shows the node to get nonce2 (ProveSlot).
func (s *Slot) Proof() []byte { return ProveSlot(s.Public.ID, s.nonce1) }

// ProveSlot is the proof of having opened slot id: HMAC-SHA256 (RFC 2104)
// keyed with nonce1 over a label and the slot id, so it is bound to the
// slot and reveals nothing of nonce1.
func ProveSlot(id SlotID, nonce1 []byte) []byte {
	m := hmac.New(sha256.New, nonce1)
	m.Write(labelProof)
	m.Write(id[:])
	return m.Sum(nil)
}

// SlotProofHash is what the node stores for a slot: a hash of the expected
// proof, so a copy of the node's store lets nobody take the slot.
func SlotProofHash(id SlotID, proof []byte) [32]byte {
	h := sha256.New()
	h.Write(labelProofHash)
	h.Write(id[:])
	h.Write(proof)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// VerifySlotProof is the node's check of a sender's proof against the stored
// hash, in constant time.
func VerifySlotProof(id SlotID, stored [32]byte, proof []byte) error {
	got := SlotProofHash(id, proof)
	if subtle.ConstantTimeCompare(got[:], stored[:]) != 1 {
		return ErrSlotProof
	}
	return nil
}

func constantEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
