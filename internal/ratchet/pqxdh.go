package ratchet

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// encodeKEM is EncodeKEM of PQXDH §2.1: the KEM type byte then the
// ML-KEM-768 encapsulation key.
func encodeKEM(ek *mlkem.EncapsulationKey768) []byte {
	return append([]byte{typeMLKEM768}, ek.Bytes()...)
}

// PrekeyBundle is what the key service hands out for one device (PQXDH §3.2):
// the identity key, the signed prekey, at most one one-time prekey, and one
// signed ML-KEM-768 prekey (a one-time one when the service has any left,
// otherwise the last-resort one).
type PrekeyBundle struct {
	Identity IdentityKey

	SignedPrekeyID  uint32
	SignedPrekey    *ecdh.PublicKey
	SignedPrekeySig []byte

	OneTimePrekeyID uint32
	OneTimePrekey   *ecdh.PublicKey // nil when the service had none

	PQPrekeyID         uint32
	PQPrekey           *mlkem.EncapsulationKey768
	PQPrekeySig        []byte
	PQPrekeyLastResort bool
}

// Verify checks the identity binding and both prekey signatures, as PQXDH
// §3.3 requires before the bundle is used.
func (b *PrekeyBundle) Verify() error {
	if b == nil || b.SignedPrekey == nil || b.PQPrekey == nil {
		return fmt.Errorf("prekey bundle incomplete: %w", ErrMalformed)
	}
	if err := b.Identity.Verify(); err != nil {
		return fmt.Errorf("prekey bundle: %w", err)
	}
	if !ed25519.Verify(b.Identity.Signing, append([]byte(ctxSignedPrekey), encodeEC(b.SignedPrekey.Bytes())...), b.SignedPrekeySig) {
		return fmt.Errorf("signed prekey %d: %w", b.SignedPrekeyID, ErrSignature)
	}
	if !ed25519.Verify(b.Identity.Signing, append([]byte(ctxPQPrekey), encodeKEM(b.PQPrekey)...), b.PQPrekeySig) {
		return fmt.Errorf("pq prekey %d: %w", b.PQPrekeyID, ErrSignature)
	}
	return nil
}

// SignedPrekeyPair is a device's X25519 signed prekey with its signature.
type SignedPrekeyPair struct {
	ID        uint32
	Key       *ecdh.PrivateKey
	Signature []byte
}

// OneTimePrekeyPair is a device's X25519 one-time prekey.
type OneTimePrekeyPair struct {
	ID  uint32
	Key *ecdh.PrivateKey
}

// PQPrekeyPair is a device's signed ML-KEM-768 prekey, one-time or last
// resort.
type PQPrekeyPair struct {
	ID         uint32
	Key        *mlkem.DecapsulationKey768
	Signature  []byte
	LastResort bool
}

// NewSignedPrekey makes a signed prekey: Sig(IK, EncodeEC(SPK)) of §3.2,
// with PhoneX's signature context prepended.
func NewSignedPrekey(r io.Reader, ik *IdentityKeyPair, id uint32) (*SignedPrekeyPair, error) {
	k, err := generateDH(orDefault(r))
	if err != nil {
		return nil, fmt.Errorf("signed prekey: %w", err)
	}
	return &SignedPrekeyPair{ID: id, Key: k, Signature: ik.sign(ctxSignedPrekey, encodeEC(k.PublicKey().Bytes()))}, nil
}

// NewOneTimePrekey makes an X25519 one-time prekey.
func NewOneTimePrekey(r io.Reader, id uint32) (*OneTimePrekeyPair, error) {
	k, err := generateDH(orDefault(r))
	if err != nil {
		return nil, fmt.Errorf("one-time prekey: %w", err)
	}
	return &OneTimePrekeyPair{ID: id, Key: k}, nil
}

// NewPQPrekey makes a signed ML-KEM-768 prekey: Sig(IK, EncodeKEM(PQPK)) of
// §3.2, with PhoneX's signature context prepended. The key is derived from a
// 64-byte seed read from r.
func NewPQPrekey(r io.Reader, ik *IdentityKeyPair, id uint32, lastResort bool) (*PQPrekeyPair, error) {
	var seed [mlkem.SeedSize]byte
	if _, err := io.ReadFull(orDefault(r), seed[:]); err != nil {
		return nil, fmt.Errorf("pq prekey: read randomness: %w", err)
	}
	dk, err := mlkem.NewDecapsulationKey768(seed[:])
	clear(seed[:])
	if err != nil {
		return nil, fmt.Errorf("pq prekey: %w", err)
	}
	return &PQPrekeyPair{ID: id, Key: dk, LastResort: lastResort,
		Signature: ik.sign(ctxPQPrekey, encodeKEM(dk.EncapsulationKey()))}, nil
}

// PrekeyStore is the responder's view of its own prekeys (PQXDH §3.4).
// Lookups do not consume; UsePrekeys deletes the one-time prekeys of an
// initial message only after its first message has authenticated, so a
// forged initial message cannot burn them.
type PrekeyStore interface {
	SignedPrekey(id uint32) (*ecdh.PrivateKey, error)
	// OneTimePrekey returns ErrPrekeyNotFound for an id never issued or
	// already used.
	OneTimePrekey(id uint32) (*ecdh.PrivateKey, error)
	// PQPrekey returns a one-time or last-resort ML-KEM prekey;
	// ErrPrekeyNotFound for a used one-time id.
	PQPrekey(id uint32) (*mlkem.DecapsulationKey768, error)
	// UsePrekeys deletes the X25519 one-time prekey (when hasOneTime) and
	// the ML-KEM prekey pqID if it is a one-time one; a last-resort ML-KEM
	// prekey stays. It must fail if a one-time key is already gone, so
	// that two racing accepts of one initial message cannot both succeed.
	UsePrekeys(oneTimeID uint32, hasOneTime bool, pqID uint32) error
}

// InitialMessage is the PQXDH initial message (§3.3) less its ciphertext,
// which is the first ratchet message that carries it:
//
//	version    1 byte    = 1
//	flags      1 byte    bit 0: a one-time prekey was used; other bits zero
//	IK_A       130 bytes Encode(IK_A): 0x05|X25519 (32) | 0x06|Ed25519 (32) | binding (64)
//	EK_A       33 bytes  EncodeEC(EK_A)
//	SPK id     4 bytes   big-endian
//	OPK id     4 bytes   big-endian, zero when flags bit 0 is clear
//	PQPK id    4 bytes   big-endian
//	CT         1088 bytes ML-KEM-768 ciphertext
type InitialMessage struct {
	Identity         IdentityKey
	Ephemeral        *ecdh.PublicKey
	SignedPrekeyID   uint32
	OneTimePrekeyID  uint32
	HasOneTimePrekey bool
	PQPrekeyID       uint32
	KEMCiphertext    []byte
}

const (
	initialVersion     = 1
	initialFlagOneTime = 0x01
	initialSize        = 2 + identityEncodedSize + ecEncodedSize + 12 + mlkem.CiphertextSize768
)

// MarshalBinary encodes the initial message.
func (im *InitialMessage) MarshalBinary() ([]byte, error) {
	if im.Ephemeral == nil || im.Identity.DH == nil || len(im.Identity.Signing) != ed25519.PublicKeySize ||
		len(im.Identity.Binding) != ed25519.SignatureSize || len(im.KEMCiphertext) != mlkem.CiphertextSize768 {
		return nil, fmt.Errorf("initial message incomplete: %w", ErrMalformed)
	}
	if !im.HasOneTimePrekey && im.OneTimePrekeyID != 0 {
		return nil, fmt.Errorf("one-time prekey id without flag: %w", ErrMalformed)
	}
	out := make([]byte, 0, initialSize)
	var flags byte
	if im.HasOneTimePrekey {
		flags = initialFlagOneTime
	}
	out = append(out, initialVersion, flags)
	out = append(out, im.Identity.Encode()...)
	out = append(out, encodeEC(im.Ephemeral.Bytes())...)
	out = binary.BigEndian.AppendUint32(out, im.SignedPrekeyID)
	out = binary.BigEndian.AppendUint32(out, im.OneTimePrekeyID)
	out = binary.BigEndian.AppendUint32(out, im.PQPrekeyID)
	return append(out, im.KEMCiphertext...), nil
}

// ParseInitialMessage decodes an initial message. It checks structure only;
// AcceptSession verifies the identity binding.
func ParseInitialMessage(b []byte) (*InitialMessage, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("initial message: %w", ErrMalformed)
	}
	if b[0] != initialVersion {
		return nil, fmt.Errorf("initial message version %d: %w", b[0], ErrVersion)
	}
	if len(b) != initialSize {
		return nil, fmt.Errorf("initial message of %d bytes: %w", len(b), ErrMalformed)
	}
	flags := b[1]
	if flags&^initialFlagOneTime != 0 {
		return nil, fmt.Errorf("initial message flags %#x: %w", flags, ErrMalformed)
	}
	im := &InitialMessage{HasOneTimePrekey: flags&initialFlagOneTime != 0}
	p := b[2:]
	ik, err := parseIdentityKey(p[:identityEncodedSize])
	if err != nil {
		return nil, err
	}
	im.Identity = ik
	p = p[identityEncodedSize:]
	if p[0] != typeX25519 {
		return nil, fmt.Errorf("ephemeral key type %#x: %w", p[0], ErrMalformed)
	}
	if im.Ephemeral, err = ecdh.X25519().NewPublicKey(p[1:ecEncodedSize]); err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", ErrMalformed)
	}
	p = p[ecEncodedSize:]
	im.SignedPrekeyID = binary.BigEndian.Uint32(p[0:4])
	im.OneTimePrekeyID = binary.BigEndian.Uint32(p[4:8])
	im.PQPrekeyID = binary.BigEndian.Uint32(p[8:12])
	if !im.HasOneTimePrekey && im.OneTimePrekeyID != 0 {
		return nil, fmt.Errorf("one-time prekey id without flag: %w", ErrMalformed)
	}
	im.KEMCiphertext = append([]byte(nil), p[12:]...)
	return im, nil
}

// associatedData is AD = Encode(IK_A) || Encode(IK_B) of PQXDH §3.3.
func associatedData(initiator, responder IdentityKey) []byte {
	return append(initiator.Encode(), responder.Encode()...)
}

// InitiateSession runs the initiator's side of PQXDH (§3.3) against a
// verified bundle and starts a Double Ratchet session (§5.1 of the Double
// Ratchet: SK as the root key, the signed prekey as the responder's first
// ratchet key). The session attaches the returned initial message to every
// message it sends until the peer replies.
//
// The caller must have checked bundle.Identity with a TrustStore.
func InitiateSession(r io.Reader, alice *IdentityKeyPair, bundle *PrekeyBundle, opts ...Option) (*Session, *InitialMessage, error) {
	if alice == nil {
		return nil, nil, errors.New("ratchet: initiate: nil identity")
	}
	if err := bundle.Verify(); err != nil {
		return nil, nil, fmt.Errorf("initiate: %w", err)
	}
	r = orDefault(r)
	ek, err := generateDH(r)
	if err != nil {
		return nil, nil, fmt.Errorf("initiate: ephemeral key: %w", err)
	}
	var km []byte
	for _, step := range []struct {
		priv *ecdh.PrivateKey
		pub  *ecdh.PublicKey
	}{
		{alice.dh, bundle.SignedPrekey},             // DH1 = DH(IK_A, SPK_B)
		{ek, bundle.Identity.DH},                    // DH2 = DH(EK_A, IK_B)
		{ek, bundle.SignedPrekey},                   // DH3 = DH(EK_A, SPK_B)
		{ek, bundle.OneTimePrekey /* may be nil */}, // DH4 = DH(EK_A, OPK_B)
	} {
		if step.pub == nil {
			continue
		}
		out, err := step.priv.ECDH(step.pub)
		if err != nil {
			clear(km)
			return nil, nil, fmt.Errorf("initiate: x25519: %w", err)
		}
		km = append(km, out...)
		clear(out)
	}
	// (CT, SS) = PQKEM-ENC(PQPK_B). crypto/mlkem draws the encapsulation
	// randomness from the system generator; it cannot be injected.
	ss, ct := bundle.PQPrekey.Encapsulate()
	km = append(km, ss...)
	clear(ss)
	sk := kdfPQXDH(km)
	clear(km)

	im := &InitialMessage{
		Identity:         alice.Public(),
		Ephemeral:        ek.PublicKey(),
		SignedPrekeyID:   bundle.SignedPrekeyID,
		PQPrekeyID:       bundle.PQPrekeyID,
		KEMCiphertext:    ct,
		HasOneTimePrekey: bundle.OneTimePrekey != nil,
	}
	if im.HasOneTimePrekey {
		im.OneTimePrekeyID = bundle.OneTimePrekeyID
	}
	enc, err := im.MarshalBinary()
	if err != nil {
		return nil, nil, fmt.Errorf("initiate: %w", err)
	}
	s, err := NewInitiator(r, sk, associatedData(alice.Public(), bundle.Identity), bundle.SignedPrekey, opts...)
	clear(sk[:])
	if err != nil {
		return nil, nil, fmt.Errorf("initiate: %w", err)
	}
	s.st.initial = enc
	copy(s.st.baseKey[:], ek.PublicKey().Bytes())
	return s, im, nil
}

// AcceptSession runs the responder's side of PQXDH (§3.4) on a ratchet
// message that carries an initial message, decrypts that first message with
// the new session, and only then deletes the one-time prekeys it used. On
// any error nothing is consumed and no session exists.
//
// The caller must first check the initial message's identity key with a
// TrustStore (ParseMessage exposes it), and should route a message whose
// initial message matches an existing session (Session.MatchesInitial) to
// that session instead: the initiator repeats the initial message until it
// gets a reply, and its one-time prekey is gone after the first accept.
func AcceptSession(r io.Reader, bob *IdentityKeyPair, store PrekeyStore, msg, ad []byte, opts ...Option) (*Session, []byte, error) {
	p, err := prepareAccept(r, bob, store, msg, ad, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := p.commit(store); err != nil {
		return nil, nil, err
	}
	return p.s, p.pt, nil
}

// pendingAccept is an accepted first message whose session is not yet
// committed and whose one-time prekeys are not yet consumed.
type pendingAccept struct {
	s    *Session
	next *state
	im   *InitialMessage
	pt   []byte
}

func (p *pendingAccept) commit(store PrekeyStore) error {
	if err := store.UsePrekeys(p.im.OneTimePrekeyID, p.im.HasOneTimePrekey, p.im.PQPrekeyID); err != nil {
		return fmt.Errorf("accept: consume prekeys: %w", err)
	}
	p.s.commit(p.next)
	return nil
}

func prepareAccept(r io.Reader, bob *IdentityKeyPair, store PrekeyStore, msg, ad []byte, opts []Option) (*pendingAccept, error) {
	if bob == nil || store == nil {
		return nil, errors.New("ratchet: accept: nil identity or prekey store")
	}
	m, err := ParseMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	im := m.Initial
	if im == nil {
		return nil, fmt.Errorf("accept: message carries no initial message: %w", ErrMalformed)
	}
	if err := im.Identity.Verify(); err != nil {
		return nil, fmt.Errorf("accept: initiator identity: %w", err)
	}
	spk, err := store.SignedPrekey(im.SignedPrekeyID)
	if err != nil {
		return nil, fmt.Errorf("accept: signed prekey %d: %w", im.SignedPrekeyID, err)
	}
	var opk *ecdh.PrivateKey
	if im.HasOneTimePrekey {
		if opk, err = store.OneTimePrekey(im.OneTimePrekeyID); err != nil {
			return nil, fmt.Errorf("accept: one-time prekey %d: %w", im.OneTimePrekeyID, err)
		}
	}
	pq, err := store.PQPrekey(im.PQPrekeyID)
	if err != nil {
		return nil, fmt.Errorf("accept: pq prekey %d: %w", im.PQPrekeyID, err)
	}
	var km []byte
	for _, step := range []struct {
		priv *ecdh.PrivateKey
		pub  *ecdh.PublicKey
	}{
		{spk, im.Identity.DH},  // DH1 = DH(SPK_B, IK_A)
		{bob.dh, im.Ephemeral}, // DH2 = DH(IK_B, EK_A)
		{spk, im.Ephemeral},    // DH3 = DH(SPK_B, EK_A)
		{opk, im.Ephemeral},    // DH4 = DH(OPK_B, EK_A)
	} {
		if step.priv == nil {
			continue
		}
		out, err := step.priv.ECDH(step.pub)
		if err != nil {
			clear(km)
			return nil, fmt.Errorf("accept: x25519: %w", err)
		}
		km = append(km, out...)
		clear(out)
	}
	ss, err := pq.Decapsulate(im.KEMCiphertext)
	if err != nil {
		clear(km)
		return nil, fmt.Errorf("accept: ml-kem: %w", ErrMalformed)
	}
	km = append(km, ss...)
	clear(ss)
	sk := kdfPQXDH(km)
	clear(km)

	s, err := NewResponder(r, sk, associatedData(im.Identity, bob.Public()), spk, opts...)
	clear(sk[:])
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	copy(s.st.baseKey[:], im.Ephemeral.Bytes())
	pt, next, err := s.decrypt(m, ad)
	if err != nil {
		return nil, fmt.Errorf("accept: first message: %w", err)
	}
	return &pendingAccept{s: s, next: next, im: im, pt: pt}, nil
}

// MatchesInitial reports whether the session was set up by this initial
// message (same initiator ephemeral key).
func (s *Session) MatchesInitial(im *InitialMessage) bool {
	if im == nil || im.Ephemeral == nil {
		return false
	}
	return subtle.ConstantTimeCompare(s.st.baseKey[:], im.Ephemeral.Bytes()) == 1
}

// String redacts the private key.
func (k *SignedPrekeyPair) String() string {
	return fmt.Sprintf("SignedPrekeyPair{ID: %d, private REDACTED}", k.ID)
}

// String redacts the private key.
func (k *OneTimePrekeyPair) String() string {
	return fmt.Sprintf("OneTimePrekeyPair{ID: %d, private REDACTED}", k.ID)
}

// String redacts the private key.
func (k *PQPrekeyPair) String() string {
	return fmt.Sprintf("PQPrekeyPair{ID: %d, LastResort: %t, private REDACTED}", k.ID, k.LastResort)
}
