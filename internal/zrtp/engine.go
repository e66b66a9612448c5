// Package zrtp implements the ZRTP media-path key agreement of RFC 6189 as
// a pure protocol engine: it takes packets and the current time in and gives
// packets to send and events out. It opens no sockets, starts no goroutines
// and reads no clock; randomness comes from an injected io.Reader.
//
// A call's first stream runs in DH mode (DH3k, X255/E255, EC25 or the
// X25519+ML-KEM-768 hybrid X2K7 of docs/zrtp-hybrid.md); further streams of
// the same call use Multistream mode keyed from the first stream's Session.
// Retained secrets give key continuity (§4.3, §4.6.1): the caller supplies
// the cached record for the peer's ZID through Cache and stores the new
// record from the Retain event.
package zrtp

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"time"
)

// ZID is a 96-bit ZRTP endpoint identifier (§4.9).
type ZID [12]byte

// String returns the ZID in hex.
func (z ZID) String() string { return hex.EncodeToString(z[:]) }

// CachedSecret is the retained-secret record kept for one peer ZID.
type CachedSecret struct {
	RS1      []byte // newest retained secret, 32 bytes
	RS2      []byte // previous retained secret, may be nil
	Verified bool   // the user confirmed the SAS in an earlier call
}

// Cache looks up the retained secrets for a peer ZID. It is called once,
// when the peer's Hello arrives.
type Cache interface {
	Lookup(peer ZID) (CachedSecret, bool)
}

// CacheFunc adapts a function to Cache.
type CacheFunc func(peer ZID) (CachedSecret, bool)

// Lookup calls f.
func (f CacheFunc) Lookup(peer ZID) (CachedSecret, bool) { return f(peer) }

// Retransmission defaults of RFC 6189 §6.
const (
	DefaultT1              = 50 * time.Millisecond
	DefaultT1Max           = 200 * time.Millisecond
	DefaultHelloRetries    = 20
	ExtendedHelloRetries   = 60 // about 12 s once the peer is known to speak ZRTP
	DefaultT2              = 150 * time.Millisecond
	DefaultT2Max           = 1200 * time.Millisecond
	DefaultRetries         = 10
	ResponderTimeout       = 10 * time.Second
	DefaultClientID        = "PhoneX Go"
	CacheExpiryForever     = 0xffffffff
	defaultEndpointHashLen = 8
)

// Config configures one ZRTP stream.
type Config struct {
	ZID      ZID
	ClientID string    // up to 16 bytes, space padded; DefaultClientID if empty
	SSRC     uint32    // SSRC of our RTP stream, put in every ZRTP packet
	Rand     io.Reader // crypto/rand.Reader if nil

	// Preference lists; the Default… lists if nil. At most 7 each.
	Hashes, Ciphers, AuthTags, KeyAgreements, SASTypes []Algo

	Cache     Cache  // retained secrets; nil means no cache
	AuxSecret []byte // auxsecret of §4.3, e.g. bound to identity keys; nil if none
	// PeerHelloHash is the peer's a=zrtp-hash value ("1.10 <hex>" or just the
	// hex); when set, a Hello that does not match is dropped (§8.1).
	PeerHelloHash string
	Passive       bool     // never send a Commit (P flag)
	NoCache       bool     // send a cache expiry of 0: the peer should not store
	Session       *Session // set to add this stream in Multistream mode

	T1, T1Max, T2, T2Max     time.Duration // zero means the §6 defaults
	HelloRetries, MaxRetries int
}

// Session is the ZRTP session key of a call (ZRTPSess, §4.5.2) with the
// algorithms of its first stream; pass it in Config.Session to key further
// streams in Multistream mode. It must not outlive the call.
type Session struct {
	key          []byte
	hash         Algo
	cipher       Algo
	authTag      Algo
	keyAgreement Algo
	sas          string
	sasType      Algo
	peerZID      ZID
}

// SRTPKeys are the SRTP master keys and salts (§4.5.3). The initiator sends
// with the Initiator pair and receives with the Responder pair; the
// responder does the opposite.
type SRTPKeys struct {
	InitiatorKey, InitiatorSalt []byte
	ResponderKey, ResponderSalt []byte
}

// Event is something the engine reports: *Secure, *Retain, *Failed or
// *GoClearRefused.
type Event interface{ zrtpEvent() }

// Secure reports that SRTP keys are ready. For the initiator it comes when
// Confirm1 verifies; for the responder when Confirm2 verifies.
type Secure struct {
	SAS                string // rendered per SASType; the first stream's SAS in Multistream mode
	SASType            Algo
	SASValue           uint32
	Cipher             Algo
	Hash               Algo
	KeyAgreement       Algo
	AuthTag            Algo
	Keys               SRTPKeys
	Initiator          bool
	Multistream        bool
	PeerZID            ZID
	CacheMatched       bool // s1 came from a retained secret
	PreviouslyVerified bool // cache matched and our record says the SAS was verified
	PeerVerified       bool // the peer's Confirm carried the V flag
	CacheMismatch      bool // we held rs1 for this peer but it did not match: possible MitM (§4.3.2)
	AuxMismatch        bool // we had an auxsecret but the peer's did not match
	ExportedKey        []byte
	Session            *Session // nil in Multistream mode
}

// Retain carries the new retained-secret record to store for the peer
// (§4.6.1). It comes once the RFC allows the update: for the responder with
// Confirm2, for the initiator with Conf2ACK or SRTPAuthenticated. When
// RequiresVerification is set (a cache mismatch, §4.6.1.1), store it only
// after the user has confirmed the SAS.
type Retain struct {
	PeerZID              ZID
	Record               CachedSecret
	Expiry               uint32 // seconds; 0xffffffff means indefinitely
	RequiresVerification bool
}

// Failed reports that the exchange ended without keys.
type Failed struct{ Err error }

// GoClearRefused reports an authenticated-looking GoClear that we refused;
// the call stays encrypted.
type GoClearRefused struct{}

func (*Secure) zrtpEvent()         {}
func (*Retain) zrtpEvent()         {}
func (*Failed) zrtpEvent()         {}
func (*GoClearRefused) zrtpEvent() {}

// Result is what one call into the engine produced: framed packets to send
// now, in order, and events.
type Result struct {
	Packets [][]byte
	Events  []Event
}

type state int

const (
	stateIdle state = iota
	stateDiscovery
	stateCommitSent   // initiator: waiting for DHPart1 (or Confirm1 in Multistream)
	stateDHPart2Sent  // initiator: waiting for Confirm1
	stateConfirm2Sent // initiator: waiting for Conf2ACK
	stateDHPart1Sent  // responder: waiting for DHPart2
	stateConfirm1Sent // responder: waiting for Confirm2
	stateSecure
	stateFailed
)

type timer struct {
	msg      []byte
	at       time.Time
	interval time.Duration
	max      time.Duration
	count    int
	limit    int
	active   bool
}

// Engine runs the ZRTP exchange of one media stream. It is not safe for
// concurrent use.
type Engine struct {
	cfg   Config
	rnd   io.Reader
	seq   uint16
	state state
	chain [4][32]byte // our H0..H3 (§9)
	hello *Hello

	peerHello   *Hello
	gotHelloACK bool
	initiator   bool
	now         time.Time

	// negotiated
	hash    hashAlg
	cipher  Algo
	authTag Algo
	ka      Algo
	sasType Algo

	commit  *Commit // the Commit in force: ours as initiator, the peer's as responder
	kex     *keyAgreement
	dhPart1 *DHPart
	dhPart2 *DHPart
	keys    *keySet

	cached        CachedSecret
	haveCache     bool
	cacheMatched  bool
	cacheMismatch bool
	auxMismatch   bool
	peerFlags     byte
	peerExpiry    uint32

	lastReply []byte // responder: the reply to repeat when a request repeats
	timer     timer
	secure    *Secure

	out    [][]byte
	events []Event
}

// New makes an engine. Call Start to send the first Hello.
func New(cfg Config) (*Engine, error) {
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if len(cfg.ClientID) > 16 {
		return nil, fmt.Errorf("zrtp: client ID %q longer than 16 bytes", cfg.ClientID)
	}
	defaults := []struct {
		list *[]Algo
		def  []Algo
		kind int
	}{
		{&cfg.Hashes, DefaultHashes, kindHash},
		{&cfg.Ciphers, DefaultCiphers, kindCipher},
		{&cfg.AuthTags, DefaultAuthTags, kindAuth},
		{&cfg.KeyAgreements, DefaultKeyAgreements, kindKA},
		{&cfg.SASTypes, DefaultSASTypes, kindSAS},
	}
	for _, d := range defaults {
		if *d.list == nil {
			*d.list = d.def
		}
		if len(*d.list) > 7 {
			return nil, fmt.Errorf("zrtp: at most 7 algorithms of a kind, got %d", len(*d.list))
		}
		for _, a := range *d.list {
			if !supportedIn(d.kind, a) {
				return nil, fmt.Errorf("zrtp: algorithm %q is not implemented", a)
			}
		}
	}
	if cfg.T1 == 0 {
		cfg.T1 = DefaultT1
	}
	if cfg.T1Max == 0 {
		cfg.T1Max = DefaultT1Max
	}
	if cfg.T2 == 0 {
		cfg.T2 = DefaultT2
	}
	if cfg.T2Max == 0 {
		cfg.T2Max = DefaultT2Max
	}
	if cfg.HelloRetries == 0 {
		cfg.HelloRetries = DefaultHelloRetries
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = DefaultRetries
	}
	if cfg.PeerHelloHash != "" {
		if _, err := parseHelloHash(cfg.PeerHelloHash); err != nil {
			return nil, err
		}
	}
	e := &Engine{cfg: cfg, rnd: cfg.Rand}
	h0, err := readRand(e.rnd, 32)
	if err != nil {
		return nil, err
	}
	copy(e.chain[0][:], h0)
	for i := 1; i < 4; i++ {
		e.chain[i] = sha256Sum(e.chain[i-1][:])
	}
	sb, err := readRand(e.rnd, 2)
	if err != nil {
		return nil, err
	}
	// Start low and never at 0: bzrtp drops packets whose sequence number is
	// not above the last one it saw, starting from 0, and does not handle
	// wrap-around.
	e.seq = 1 + binary.BigEndian.Uint16(sb)&0x3fff

	h := &Hello{
		Hashes: cfg.Hashes, Ciphers: cfg.Ciphers, AuthTags: cfg.AuthTags,
		KeyAgreements: cfg.KeyAgreements, SASTypes: cfg.SASTypes,
		ZID: cfg.ZID, H3: e.chain[3], Passive: cfg.Passive,
	}
	copy(h.Version[:], Version)
	copy(h.ClientID[:], fmt.Sprintf("%-16s", cfg.ClientID))
	if _, err := h.encode(e.chain[2][:]); err != nil {
		return nil, err
	}
	e.hello = h
	return e, nil
}

// HelloHash returns our a=zrtp-hash attribute value, "1.10 <64 hex digits>"
// (§8.1).
func (e *Engine) HelloHash() string { return FormatHelloHash(e.hello.raw) }

// Start sends the first Hello and arms the T1 timer.
func (e *Engine) Start(now time.Time) Result {
	e.begin(now)
	if e.state == stateIdle {
		e.state = stateDiscovery
		e.send(e.hello.raw)
		e.arm(e.hello.raw, e.cfg.T1, e.cfg.T1Max, e.cfg.HelloRetries)
	}
	return e.end()
}

// NextTimeout is when HandleTimeout should next be called; zero if no timer
// is running.
func (e *Engine) NextTimeout() time.Time {
	if !e.timer.active {
		return time.Time{}
	}
	return e.timer.at
}

// HandleTimeout retransmits the pending message if its timer is due (§6) and
// fails the exchange when the retry limit is reached.
func (e *Engine) HandleTimeout(now time.Time) Result {
	e.begin(now)
	t := &e.timer
	if t.active && !now.Before(t.at) {
		t.count++
		if t.count > t.limit {
			t.active = false
			if t.msg == nil {
				// Responder watchdog: nothing from the initiator for
				// ResponderTimeout after its Commit (§6).
				e.fail(&Error{Code: CodeTimeout, Detail: "initiator went silent"}, true)
			} else if e.state == stateDiscovery {
				e.fail(fmt.Errorf("%w: no Hello acknowledgement", ErrRetransmitExceeded), false)
			} else {
				e.fail(&Error{Code: CodeTimeout, Detail: ErrRetransmitExceeded.Error()}, false)
			}
		} else {
			e.send(t.msg)
			t.interval = min(2*t.interval, t.max)
			t.at = now.Add(t.interval)
		}
	}
	return e.end()
}

// SRTPAuthenticated tells the initiator that an SRTP packet from the
// responder passed authentication, which counts as Conf2ACK (§4.6).
func (e *Engine) SRTPAuthenticated(now time.Time) Result {
	e.begin(now)
	if e.state == stateConfirm2Sent {
		e.finishInitiator()
	}
	return e.end()
}

// Secure reports whether keys have been agreed.
func (e *Engine) Secure() bool { return e.secure != nil }

// Failed reports whether the exchange has ended in failure.
func (e *Engine) Failed() bool { return e.state == stateFailed }

// HandlePacket processes one received ZRTP packet. A non-nil error means
// the packet was dropped (bad CRC, malformed, out of place); the exchange
// goes on unless a Failed event is returned.
func (e *Engine) HandlePacket(now time.Time, pkt []byte) (Result, error) {
	e.begin(now)
	err := e.handle(pkt)
	return e.end(), err
}

func (e *Engine) handle(pkt []byte) error {
	if e.state == stateFailed {
		return ErrClosed
	}
	if e.state == stateIdle {
		return fmt.Errorf("%w: engine not started", ErrUnexpectedMessage)
	}
	_, ssrc, msg, err := ParsePacket(pkt)
	if err != nil {
		return err
	}
	typ, _ := messageType(msg)
	switch typ {
	case typeHello:
		return e.onHello(msg)
	case typeHelloACK:
		if _, err := ParseAck(msg); err != nil {
			return err
		}
		return e.onHelloACK()
	case typeCommit:
		return e.onCommit(msg)
	case typeDHPart1:
		return e.onDHPart1(msg)
	case typeDHPart2:
		return e.onDHPart2(msg)
	case typeConfirm1:
		return e.onConfirm1(msg)
	case typeConfirm2:
		return e.onConfirm2(msg)
	case typeConf2ACK:
		if _, err := ParseAck(msg); err != nil {
			return err
		}
		if e.state != stateConfirm2Sent {
			return ErrUnexpectedMessage
		}
		e.finishInitiator()
		return nil
	case typeError:
		code, err := ParseError(msg)
		if err != nil {
			return err
		}
		e.send(ackMessage(typeErrorACK))
		if e.state == stateSecure {
			return nil // an Error ends only an exchange in progress (§4.7.1)
		}
		e.fail(&Error{Code: code, Remote: true}, false)
		return nil
	case typeGoClear:
		mac, err := ParseGoClear(msg)
		if err != nil {
			return err
		}
		if e.secure != nil && e.keys != nil {
			// clear_mac = MAC(mackey of the sender, "GoClear ") (§4.7.2); a
			// GoClear that fails it is not acted on at all.
			key := e.keys.macKeyI
			if e.initiator {
				key = e.keys.macKeyR
			}
			want := secretID(e.hash.new, key, []byte(typeGoClear))
			if !hmac.Equal(want[:], mac[:]) {
				return fmt.Errorf("%w: GoClear", ErrMessageMAC)
			}
			// We never set the Allow Clear flag, so a GoClear is refused
			// and the call stays encrypted (§4.7.2).
			e.send(encodeError(CodeGoClearRefused))
			e.events = append(e.events, &GoClearRefused{})
		}
		return nil
	case typePing:
		p, err := ParsePing(msg)
		if err != nil {
			return err
		}
		ack := &PingACK{ReceivedHash: p.EndpointHash, ReceivedSSRC: ssrc}
		copy(ack.Version[:], Version)
		copy(ack.SenderHash[:], e.cfg.ZID[:defaultEndpointHashLen]) // truncated ZID (§5.16)
		e.send(ack.encode())
		return nil
	case typeSASrelay:
		if err := ParseSASrelay(msg); err != nil {
			return err
		}
		// We never accept a trusted MiTM, so the relayed SAS is not
		// rendered, but a RelayACK is still due (§5.13).
		e.send(ackMessage(typeRelayACK))
		return nil
	case typeErrorACK, typeClearACK, typeRelayACK:
		_, err := ParseAck(msg)
		return err
	case typePingACK:
		_, err := ParsePingACK(msg)
		return err
	}
	return fmt.Errorf("%w: %q", ErrUnknownMessage, typ)
}

func (e *Engine) begin(now time.Time) {
	e.now = now
	e.out = nil
	e.events = nil
}

func (e *Engine) end() Result {
	r := Result{Packets: e.out, Events: e.events}
	e.out, e.events = nil, nil
	return r
}

func (e *Engine) send(msg []byte) {
	e.out = append(e.out, EncodePacket(e.seq, e.cfg.SSRC, msg))
	e.seq++
}

// arm starts retransmission of msg, which has just been sent.
func (e *Engine) arm(msg []byte, first, max time.Duration, limit int) {
	e.timer = timer{msg: msg, at: e.now.Add(first), interval: first, max: max, limit: limit, active: true}
}

func (e *Engine) stopTimer() { e.timer.active = false }

// fail ends the exchange. With sendError, a local *Error is reported to
// the peer in an Error message.
func (e *Engine) fail(err error, sendError bool) {
	if e.state == stateFailed {
		return
	}
	if pe, ok := err.(*Error); ok && sendError && !pe.Remote {
		e.send(encodeError(pe.Code))
	}
	e.stopTimer()
	e.state = stateFailed
	e.keys = nil
	e.kex = nil
	e.events = append(e.events, &Failed{Err: err})
}

// failWith fails on a protocol error: *Error values are sent to the peer.
func (e *Engine) failWith(err error) error {
	e.fail(err, true)
	return err
}
