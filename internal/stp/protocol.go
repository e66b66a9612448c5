package stp

import (
	"crypto/hpke"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/wire"
)

// Protocol types of MessageProtocolEnvelope.protocolType (draft §2.2). The
// draft numbers both STPSimpleAuth and Group STPAuth 4; Group STPAuth gets 5.
// The draft's commented-out candidates (file transfer, OTR, shared secret,
// plain) were never assigned; the ratchet STP takes 6.
const (
	TypeSMIME     int32 = 1 // S/MIME, protocol v1: answered with ErrUnsupported
	TypeSimple    int32 = 2 // STPSimple v1, v2, v3
	TypeGroup     int32 = 3 // STPSimpleGroup v1, v2 (key slots signed)
	TypeAuth      int32 = 4 // STPSimpleAuth v1
	TypeGroupAuth int32 = 5 // Group STPAuth: reserved, not implemented
	TypeRatchet   int32 = 6 // ratchet STP (X3DH/PQXDH + Double Ratchet): registered by its package
)

// MaxMessageSize bounds the envelope and STP bytes Open accepts.
const MaxMessageSize = 1 << 20

// Protocol names one STP: an envelope protocolType and protocolVersion.
type Protocol struct {
	Type    int32
	Version int32
}

// Well-known protocols.
var (
	SMIMEv1  = Protocol{TypeSMIME, 1}
	SimpleV1 = Protocol{TypeSimple, 1}
	SimpleV2 = Protocol{TypeSimple, 2}
	SimpleV3 = Protocol{TypeSimple, 3}
	GroupV1  = Protocol{TypeGroup, 1}
	GroupV2  = Protocol{TypeGroup, 2}
	AuthV1   = Protocol{TypeAuth, 1}
)

func (p Protocol) String() string { return fmt.Sprintf("%d/%d", p.Type, p.Version) }

// Message is an opened STP message: authenticated, decrypted, checked for
// recipient, freshness and replay.
type Message struct {
	Protocol           Protocol
	AmpType            int32
	AmpVersion         int32
	SequenceNumber     *uint32 // nil when the sender left it out
	Sent               time.Time
	Nonce              uint32
	Sender             string
	Destination        string // as sent: the address, or its hash (destinationType 1)
	CertificateVersion string
	// Payload is the AMP message.
	Payload []byte
}

// Receiver is what the receiving device brings to Open: its addresses, its
// private keys and how to find senders' certificates.
type Receiver struct {
	// Addresses this device accepts as destination (its device address,
	// and its account address if messages to the account are wanted).
	Addresses []string
	// Groups are further destinations of STPSimpleGroup messages this
	// device accepts (the groups it belongs to).
	Groups []string
	// RSAKey opens RSA-OAEP key blocks (easymBlockVersion 1).
	RSAKey *rsa.PrivateKey
	// KEMKey opens HPKE key blocks (easymBlockVersion 2); an
	// MLKEM768X25519 private key.
	KEMKey hpke.PrivateKey
	// SenderCertificate returns the certificate that verifies sender's
	// signatures. certificateVersion is the STP field of that name, maybe
	// empty. It is the caller's job that the certificate names sender and
	// chains to a trusted CA. An error is reported as ErrUnknownSender.
	SenderCertificate func(sender, certificateVersion string) (*x509.Certificate, error)
	// Replay records accepted (sender, nonce) pairs. Nil disables replay
	// detection (tests only).
	Replay ReplayGuard
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxAge is how old a message may be; 0 means DefaultMaxAge.
	MaxAge time.Duration
	// MaxSkew is how far in the future a message may be; 0 means
	// DefaultMaxSkew.
	MaxSkew time.Duration
}

// Defaults of the timestamp window. Offline messages wait on the server, so
// the window spans the server's offline retention.
const (
	DefaultMaxAge  = 14 * 24 * time.Hour
	DefaultMaxSkew = 5 * time.Minute
)

func (r *Receiver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Opener opens the payload of one STP. p is the envelope's protocol, which
// the STP binds into its signature or MAC as the draft's virtual fields.
type Opener interface {
	Open(p Protocol, payload []byte, r *Receiver) (*Message, error)
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(p Protocol, payload []byte, r *Receiver) (*Message, error)

// Open calls f.
func (f OpenerFunc) Open(p Protocol, payload []byte, r *Receiver) (*Message, error) {
	return f(p, payload, r)
}

// Dispatcher routes envelopes to STPs by protocol type and version (draft
// §2.1: each layer has its own dispatcher). It is not safe to Register
// concurrently with Open.
type Dispatcher struct {
	openers map[Protocol]Opener
}

// NewDispatcher returns a dispatcher with the STPs of this package
// registered: S/MIME (answering ErrUnsupported), STPSimple v1-v3,
// STPSimpleGroup v1 and STPSimpleAuth v1.
func NewDispatcher() *Dispatcher {
	d := &Dispatcher{openers: make(map[Protocol]Opener)}
	d.openers[SMIMEv1] = OpenerFunc(openSMIME)
	for _, p := range []Protocol{SimpleV1, SimpleV2, SimpleV3} {
		d.openers[p] = OpenerFunc(openSimple)
	}
	d.openers[GroupV1] = OpenerFunc(openGroup)
	d.openers[GroupV2] = OpenerFunc(openGroup)
	d.openers[AuthV1] = OpenerFunc(openAuth)
	return d
}

// Register adds or replaces the STP for p (the ratchet STP plugs in here).
func (d *Dispatcher) Register(p Protocol, o Opener) error {
	if o == nil {
		return fmt.Errorf("register STP %v: nil opener", p)
	}
	d.openers[p] = o
	return nil
}

// Open parses a MessageProtocolEnvelope and opens its payload with the STP
// it names.
func (d *Dispatcher) Open(envelope []byte, r *Receiver) (*Message, error) {
	if r == nil {
		return nil, fmt.Errorf("open envelope: no receiver")
	}
	p, payload, err := ParseEnvelope(envelope)
	if err != nil {
		return nil, err
	}
	o, ok := d.openers[p]
	if !ok {
		return nil, fmt.Errorf("open envelope: protocol %v: %w", p, ErrUnknownProtocol)
	}
	return o.Open(p, payload, r)
}

// ParseEnvelope decodes a MessageProtocolEnvelope and returns its protocol
// and payload. protocolType, protocolVersion and payload are required.
func ParseEnvelope(b []byte) (Protocol, []byte, error) {
	if len(b) > MaxMessageSize {
		return Protocol{}, nil, fmt.Errorf("parse envelope: %d bytes: %w", len(b), ErrMalformed)
	}
	var env wire.MessageProtocolEnvelope
	if err := proto.Unmarshal(b, &env); err != nil {
		return Protocol{}, nil, fmt.Errorf("parse envelope: %v: %w", err, ErrMalformed)
	}
	if env.ProtocolType == nil || env.ProtocolVersion == nil || env.Payload == nil {
		return Protocol{}, nil, fmt.Errorf("parse envelope: missing type, version or payload: %w", ErrMalformed)
	}
	return Protocol{env.GetProtocolType(), env.GetProtocolVersion()}, env.Payload, nil
}

// MarshalEnvelope wraps an STP payload in a MessageProtocolEnvelope.
func MarshalEnvelope(p Protocol, payload []byte) ([]byte, error) {
	if payload == nil {
		payload = []byte{}
	}
	env := &wire.MessageProtocolEnvelope{
		ProtocolType:    proto.Int32(p.Type),
		ProtocolVersion: proto.Int32(p.Version),
		Payload:         payload,
	}
	b, err := deterministic.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("marshal envelope: %w", err)
	}
	return b, nil
}

var deterministic = proto.MarshalOptions{Deterministic: true}

func openSMIME(p Protocol, _ []byte, _ *Receiver) (*Message, error) {
	return nil, fmt.Errorf("open S/MIME version %d: %w", p.Version, ErrUnsupported)
}
