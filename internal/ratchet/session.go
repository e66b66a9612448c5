package ratchet

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
)

// Bounds on stored skipped message keys (Double Ratchet §3.2 MAX_SKIP, §6.4).
const (
	// DefaultMaxSkip is the most message keys one header may make a
	// session skip in one receiving chain.
	DefaultMaxSkip = 1000
	// DefaultMaxSkippedKeys caps the skipped keys kept across all chains;
	// beyond it the oldest are evicted.
	DefaultMaxSkippedKeys = 2000
	// recentChains is how many previous remote ratchet keys a session
	// remembers so that replays from finished chains are reported as
	// ErrDuplicate rather than tried as a new DH ratchet step.
	recentChains = 8
)

// Session is one side of a Double Ratchet session with one peer device.
// A Session is not safe for concurrent use; callers serialise access and
// persist it (MarshalBinary) after every successful Encrypt or Decrypt.
//
// Decrypt is transactional: it works on a copy of the state and commits only
// when the message authenticates, so a forged, tampered, duplicated or
// over-skipping message never changes the session.
type Session struct {
	rand io.Reader
	st   state
}

type skippedKey struct {
	dh [32]byte
	n  uint32
	mk [keySize]byte
}

// state holds the Double Ratchet state variables of §3.2, plus the bounds
// and the PQXDH bookkeeping.
type state struct {
	maxSkip    uint32
	maxSkipped uint32

	ad []byte // associated data from the key agreement (PQXDH §3.3)
	rk [keySize]byte

	dhs    *ecdh.PrivateKey // DHs
	dhr    [32]byte         // DHr
	hasDHr bool
	cks    [keySize]byte
	hasCKs bool
	ckr    [keySize]byte
	hasCKr bool
	ns, nr uint32
	pn     uint32

	baseKey [32]byte // the initiator's PQXDH ephemeral key, or zero
	initial []byte   // initial message to attach until the first reply

	recent  [][32]byte   // previous DHr values, newest last
	skipped []skippedKey // MKSKIPPED, oldest first
}

// Option adjusts a new session.
type Option func(*state)

// WithMaxSkip sets the per-chain skip bound (MAX_SKIP); n must be positive.
func WithMaxSkip(n uint32) Option {
	return func(s *state) {
		if n > 0 {
			s.maxSkip = n
		}
	}
}

// WithMaxSkippedKeys sets the total number of skipped keys kept across
// chains; n must be positive.
func WithMaxSkippedKeys(n uint32) Option {
	return func(s *state) {
		if n > 0 {
			s.maxSkipped = n
		}
	}
}

func newState(ad []byte, opts []Option) state {
	st := state{maxSkip: DefaultMaxSkip, maxSkipped: DefaultMaxSkippedKeys, ad: append([]byte(nil), ad...)}
	for _, o := range opts {
		o(&st)
	}
	return st
}

// generateDH is GENERATE_DH of §5.2: an X25519 key pair from 32 bytes of
// the injected randomness.
func generateDH(r io.Reader) (*ecdh.PrivateKey, error) {
	var seed [32]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return nil, fmt.Errorf("read randomness: %w", err)
	}
	k, err := ecdh.X25519().NewPrivateKey(seed[:])
	clear(seed[:])
	if err != nil {
		return nil, fmt.Errorf("x25519 key: %w", err)
	}
	return k, nil
}

// dh is DH(dh_pair, dh_pub) of §5.2. It fails on a low-order public key.
func dh(priv *ecdh.PrivateKey, pub []byte) ([]byte, error) {
	p, err := ecdh.X25519().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("x25519 public key: %w", err)
	}
	out, err := priv.ECDH(p)
	if err != nil {
		return nil, fmt.Errorf("x25519: %w", err)
	}
	return out, nil
}

func orDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// NewInitiator is RatchetInitAlice of §3.3: the party that sends first,
// knowing the shared secret sk and the responder's ratchet public key (its
// signed prekey, §5.1). ad is the key agreement's associated data. r supplies
// ratchet key randomness; nil means crypto/rand.
func NewInitiator(r io.Reader, sk [32]byte, ad []byte, remote *ecdh.PublicKey, opts ...Option) (*Session, error) {
	if remote == nil {
		return nil, errors.New("ratchet: nil remote ratchet key")
	}
	s := &Session{rand: orDefault(r), st: newState(ad, opts)}
	dhs, err := generateDH(s.rand)
	if err != nil {
		return nil, fmt.Errorf("init initiator: %w", err)
	}
	out, err := dh(dhs, remote.Bytes())
	if err != nil {
		return nil, fmt.Errorf("init initiator: %w", err)
	}
	s.st.dhs = dhs
	copy(s.st.dhr[:], remote.Bytes())
	s.st.hasDHr = true
	s.st.rk, s.st.cks = kdfRK(sk, out)
	s.st.hasCKs = true
	clear(out)
	return s, nil
}

// NewResponder is RatchetInitBob of §3.3: the party that receives first,
// holding the ratchet key pair whose public half the initiator used (its
// signed prekey, §5.1). It cannot send before it has received a message.
func NewResponder(r io.Reader, sk [32]byte, ad []byte, ratchetKey *ecdh.PrivateKey, opts ...Option) (*Session, error) {
	if ratchetKey == nil {
		return nil, errors.New("ratchet: nil ratchet key")
	}
	s := &Session{rand: orDefault(r), st: newState(ad, opts)}
	s.st.dhs = ratchetKey
	s.st.rk = sk
	return s, nil
}

// SetRand replaces the randomness source, for a session restored with
// UnmarshalBinary (which uses crypto/rand).
func (s *Session) SetRand(r io.Reader) { s.rand = orDefault(r) }

// String redacts the session's keys.
func (s *Session) String() string { return "ratchet.Session{REDACTED}" }

// LogValue redacts the session's keys and logs only its counters.
func (s *Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int("ns", int(s.st.ns)), slog.Int("nr", int(s.st.nr)), slog.Int("pn", int(s.st.pn)),
		slog.Int("skipped", len(s.st.skipped)))
}

// CanSend reports whether the session has a sending chain.
func (s *Session) CanSend() bool { return s.st.hasCKs }

// AssociatedData returns the key agreement's associated data.
func (s *Session) AssociatedData() []byte { return append([]byte(nil), s.st.ad...) }

// Skipped returns how many skipped message keys the session stores.
func (s *Session) Skipped() int { return len(s.st.skipped) }

// Encrypt is RatchetEncrypt of §3.4. ad is extra associated data that the
// receiver must present identically (for example the envelope's sender and
// recipient); the session's key-agreement data is always included.
func (s *Session) Encrypt(plaintext, ad []byte) ([]byte, error) {
	st := &s.st
	if !st.hasCKs {
		return nil, ErrNoSendingChain
	}
	if st.ns == math.MaxUint32 {
		return nil, errors.New("ratchet: sending chain exhausted")
	}
	next, mk := kdfCK(st.cks)
	h := Header{PN: st.pn, N: st.ns}
	copy(h.DH[:], st.dhs.PublicKey().Bytes())
	out := appendPrefix(make([]byte, 0, 2+2+len(st.initial)+headerSize+len(plaintext)+16+tagSize), st.initial, h)
	body := seal(mk, plaintext, concatAD(st.ad, ad, out))
	clear(mk[:])
	st.cks = next
	st.ns++
	return append(out, body...), nil
}

// Decrypt is RatchetDecrypt of §3.5. On any error the session is unchanged;
// ErrDuplicate and ErrTooManySkipped are returned (wrapped) for replays and
// for headers that would skip past MAX_SKIP.
func (s *Session) Decrypt(msg, ad []byte) ([]byte, error) {
	m, err := ParseMessage(msg)
	if err != nil {
		return nil, fmt.Errorf("ratchet decrypt: %w", err)
	}
	pt, next, err := s.decrypt(m, ad)
	if err != nil {
		return nil, fmt.Errorf("ratchet decrypt: %w", err)
	}
	s.commit(next)
	return pt, nil
}

// commit replaces the state with one that a successful decryption produced.
func (s *Session) commit(next *state) {
	for i := range s.st.skipped {
		clear(s.st.skipped[i].mk[:])
	}
	s.st = *next
}

// decrypt runs RatchetDecrypt on a copy of the state and returns the copy.
func (s *Session) decrypt(m *Message, ad []byte) ([]byte, *state, error) {
	h := m.Header
	if h.N == math.MaxUint32 || h.PN == math.MaxUint32 {
		// Encrypt never sends these; refusing them keeps Nr from wrapping.
		return nil, nil, fmt.Errorf("message number %d: %w", h.N, ErrMalformed)
	}
	st := s.st.clone()
	assoc := concatAD(st.ad, ad, m.prefix)

	// TrySkippedMessageKeys.
	if i := st.findSkipped(h.DH, h.N); i >= 0 {
		pt, err := open(st.skipped[i].mk, m.Body, assoc)
		if err != nil {
			return nil, nil, err
		}
		clear(st.skipped[i].mk[:])
		st.skipped = append(st.skipped[:i], st.skipped[i+1:]...)
		st.afterReceive()
		return pt, st, nil
	}

	if !st.hasDHr || subtle.ConstantTimeCompare(h.DH[:], st.dhr[:]) != 1 {
		if st.isRecent(h.DH) {
			return nil, nil, ErrDuplicate
		}
		if err := st.skipMessageKeys(h.PN); err != nil {
			return nil, nil, err
		}
		if err := st.dhRatchet(s.rand, h); err != nil {
			return nil, nil, err
		}
	} else if h.N < st.nr {
		return nil, nil, ErrDuplicate
	}
	if err := st.skipMessageKeys(h.N); err != nil {
		return nil, nil, err
	}
	next, mk := kdfCK(st.ckr)
	st.ckr = next
	st.nr++
	pt, err := open(mk, m.Body, assoc)
	clear(mk[:])
	if err != nil {
		return nil, nil, err
	}
	st.evictSkipped()
	st.afterReceive()
	return pt, st, nil
}

// afterReceive drops the initial message once the peer has answered: a
// message that authenticates proves the peer holds the session.
func (st *state) afterReceive() {
	st.initial = nil
}

func (st *state) clone() *state {
	c := *st
	c.ad = append([]byte(nil), st.ad...)
	c.initial = append([]byte(nil), st.initial...)
	if st.initial == nil {
		c.initial = nil
	}
	c.recent = append([][32]byte(nil), st.recent...)
	c.skipped = append([]skippedKey(nil), st.skipped...)
	return &c
}

func (st *state) findSkipped(pub [32]byte, n uint32) int {
	for i := range st.skipped {
		if st.skipped[i].n == n && st.skipped[i].dh == pub {
			return i
		}
	}
	return -1
}

func (st *state) isRecent(pub [32]byte) bool {
	for _, r := range st.recent {
		if r == pub {
			return true
		}
	}
	return false
}

// skipMessageKeys is SkipMessageKeys of §3.5 with the MAX_SKIP check.
func (st *state) skipMessageKeys(until uint32) error {
	if !st.hasCKr {
		return nil
	}
	if uint64(st.nr)+uint64(st.maxSkip) < uint64(until) {
		return fmt.Errorf("skip from %d to %d, bound %d: %w", st.nr, until, st.maxSkip, ErrTooManySkipped)
	}
	for st.nr < until {
		next, mk := kdfCK(st.ckr)
		st.ckr = next
		st.skipped = append(st.skipped, skippedKey{dh: st.dhr, n: st.nr, mk: mk})
		st.nr++
	}
	return nil
}

// evictSkipped keeps at most maxSkipped keys, dropping the oldest (§6.4).
func (st *state) evictSkipped() {
	if over := len(st.skipped) - int(st.maxSkipped); over > 0 {
		for i := range over {
			clear(st.skipped[i].mk[:])
		}
		st.skipped = append([]skippedKey(nil), st.skipped[over:]...)
	}
}

// dhRatchet is DHRatchet of §3.5.
func (st *state) dhRatchet(r io.Reader, h Header) error {
	if st.hasDHr {
		st.recent = append(st.recent, st.dhr)
		if len(st.recent) > recentChains {
			st.recent = st.recent[len(st.recent)-recentChains:]
		}
	}
	st.pn = st.ns
	st.ns = 0
	st.nr = 0
	st.dhr = h.DH
	st.hasDHr = true
	out, err := dh(st.dhs, h.DH[:])
	if err != nil {
		return fmt.Errorf("dh ratchet: %w", err)
	}
	st.rk, st.ckr = kdfRK(st.rk, out)
	st.hasCKr = true
	clear(out)
	dhs, err := generateDH(r)
	if err != nil {
		return fmt.Errorf("dh ratchet: %w", err)
	}
	st.dhs = dhs
	out, err = dh(st.dhs, h.DH[:])
	if err != nil {
		return fmt.Errorf("dh ratchet: %w", err)
	}
	st.rk, st.cks = kdfRK(st.rk, out)
	st.hasCKs = true
	clear(out)
	return nil
}
