package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/ice"
	"github.com/phonex/phonex/internal/media/wav"
	"github.com/phonex/phonex/internal/sipua"
	"github.com/phonex/phonex/internal/zrtp"
)

// Defaults of what a call sends: Opus at 22 kbit/s in 120 ms packets,
// mediumband, with 32-bit SRTP tags, keeps one direction within 20 kbit/s
// at the IP level on speech (about 19.9), at the cost of delay
// (docs/calls.md, "Audio quality").
const (
	DefaultOpusBitrate = sipua.DefaultOpusBitrate
	DefaultPTime       = sipua.DefaultPTime
)

// ZRTPStore keeps a phone's ZRTP identity (ZID, RFC 6189 §4.9), the
// secrets retained from earlier calls with each peer, the SAS trust flags
// and each peer's last SAS (for ConfirmLastCall).
type ZRTPStore struct {
	s      sipua.SecretStore
	signer sipua.Signer // nil without a profile
}

// ZRTPStore is the device's store, in its encrypted database: one ZID per
// profile, nothing of ZRTP in plain files. It is valid while d is open.
// Calls with it sign their zrtp-hash with the device key, check the
// peer's against its pinned certificate (SecureInfo.SignedHash) and bind
// both devices' messaging identities into the SAS (SecureInfo.AuxSecret).
func (d *Device) ZRTPStore() *ZRTPStore {
	return &ZRTPStore{s: d.p.ZRTPStore(), signer: d.p.CallSigner()}
}

// OpenZRTPCache opens (creating it if needed) a store in plain files under
// dir, readable by the owner only, for calls without a profile. The
// retained secrets are then unencrypted at rest: prefer Device.ZRTPStore.
func OpenZRTPCache(dir string) (*ZRTPStore, error) {
	fs, err := sipua.OpenFileStore(dir)
	if err != nil {
		return nil, fmt.Errorf("ZRTP cache: %w", err)
	}
	return &ZRTPStore{s: fs}, nil
}

// Confirmation is the outcome of ConfirmLastCall.
type Confirmation struct {
	Peer    string    `json:"peer"`     // the peer's SIP address in that call
	PeerZID string    `json:"peer_zid"` // hex
	SAS     string    `json:"sas"`
	At      time.Time `json:"call_time"`
	// Unsafe: the confirmed call had a retained-secret mismatch (a man in
	// the middle, or a peer that lost its cache); its new secret is kept now.
	Unsafe bool `json:"unsafe"`
	// MessagingVerified names the contact device (user@domain/device)
	// whose messaging identity the confirmed call bound and is now
	// verified too; "" when there was none.
	MessagingVerified string `json:"messaging_verified,omitempty"`
}

// ConfirmLastCall records, after a call, that the user compared its SAS
// with the peer named by who (a ZID in hex or a SIP address) and that the
// peer read sas. Words other than the SAS that call showed fail with
// ErrSASMismatch (compared in constant time) and change nothing.
func (z *ZRTPStore) ConfirmLastCall(who, sas string) (Confirmation, error) {
	c, err := sipua.ConfirmLastCall(z.s, who, sas)
	if err != nil {
		return Confirmation{}, err
	}
	return Confirmation{Peer: c.Peer, PeerZID: c.PeerZID.String(), SAS: c.SAS, At: c.At, Unsafe: c.Unsafe, MessagingVerified: c.MessagingVerified}, nil
}

// PhoneConfig configures a Phone.
type PhoneConfig struct {
	// Listen is the local SIP address, ip:port; port 0 picks a free one.
	Listen string
	// Transport is "udp" (default) or "tcp".
	Transport string
	// ZRTP keeps the phone's ZRTP state: Device.ZRTPStore, or
	// OpenZRTPCache for calls without a profile. Required; two phones that
	// call each other need stores of their own (ErrEqualZID otherwise).
	ZRTP *ZRTPStore
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// Phone is a SIP user agent for direct (peer-to-peer) calls.
type Phone struct {
	ua     *sipua.UA
	store  sipua.SecretStore
	signer sipua.Signer
	log    *slog.Logger
}

// NewPhone starts listening for SIP on cfg.Listen.
func NewPhone(cfg PhoneConfig) (*Phone, error) {
	if cfg.ZRTP == nil {
		return nil, errors.New("phone: PhoneConfig.ZRTP is required (Device.ZRTPStore or OpenZRTPCache)")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ua, err := sipua.NewUA(sipua.Config{Listen: cfg.Listen, Transport: cfg.Transport, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("phone: %w", err)
	}
	return &Phone{ua: ua, store: cfg.ZRTP.s, signer: cfg.ZRTP.signer, log: log}, nil
}

// URI is the SIP URI peers call this phone at.
func (p *Phone) URI() string { return p.ua.URI() }

// Close hangs up every call still up (a BYE each, at most 2 s), waits
// until their media has stopped, and stops listening: nothing of the
// phone writes the ZRTP store after it returns.
func (p *Phone) Close() error { return p.ua.Close() }

// CallOptions configure one call.
type CallOptions struct {
	// Play is a WAV stream sent to the peer, then silence; nil sends
	// silence.
	Play io.Reader
	// Record names a WAV file that receives what the peer sends.
	Record string
	// KeyAgreements and SASTypes are ZRTP algorithm names in order of
	// preference (RFC 6189 §5.1.5, §5.1.6): key agreements DH3k, X255,
	// E255, EC25, X2K7; SAS renderings B32, B256. nil keeps the defaults.
	KeyAgreements, SASTypes []string
	// AllowInsecure lets a call to a peer without ZRTP go on (with an
	// EventAlert) instead of failing with ErrNoZRTP. No media is sent in
	// the clear either way.
	AllowInsecure bool
	// NoOpus offers G.711 only.
	NoOpus bool
	// OpusBitrate (8000 to 24000 bit/s) and PTime (20, 40, 60, 80, 100 or
	// 120 ms) set what this side sends; zero means DefaultPTime and the
	// bitrate that keeps a direction within 20 kbit/s at the IP level for
	// the packet time and the SRTP tag ZRTP agrees (DefaultOpusBitrate at
	// DefaultPTime with HS32, 500 bit/s less with HS80).
	OpusBitrate int
	PTime       time.Duration
	// ICEServers are the STUN/TURN servers ICE gathers candidates from
	// (RFC 8445). Left empty, Device.Call and Device.Answer take the home
	// cluster's (Device.UseClusterRelay); a Phone then offers only host
	// candidates.
	ICEServers ICEServers
	// Relay offers only relayed candidates: the media crosses the TURN
	// relay of ICEServers (or the cluster's) and the peer never learns
	// this device's address. Without a relay the call fails with
	// ErrRelayUnavailable.
	Relay bool
	// NoICE leaves ICE out: the description carries only the plain
	// address (for peers that mishandle ICE attributes).
	NoICE bool
	// OnEvent receives the call's events in order; it must not block long.
	OnEvent func(CallEvent)
	// Device, for Device.Call, rings only the callee's device of that
	// name instead of all its devices.
	Device string
	// RingTimeout, for Device.Call, gives up (CANCEL, ErrNoAnswer) when
	// nobody answered within it; zero leaves it to the cluster (45 s).
	RingTimeout time.Duration
}

// ICEServers are STUN/TURN server URLs ("turn:relay.example.org:3478?transport=udp")
// with TURN REST credentials (the "expiry:user" name and its HMAC, as
// coturn's use-auth-secret accepts).
type ICEServers = ice.Servers

// CallEventType names what a call reports.
type CallEventType string

// Call events, in the order a call normally produces them.
const (
	CallCalling     CallEventType = CallEventType(sipua.EventCalling)     // the INVITE is being sent
	CallRinging     CallEventType = CallEventType(sipua.EventRinging)     // the peer is alerting
	CallConnected   CallEventType = CallEventType(sipua.EventConnected)   // media starts
	CallSecure      CallEventType = CallEventType(sipua.EventSecure)      // ZRTP agreed SRTP keys; the SAS is known
	CallSASVerified CallEventType = CallEventType(sipua.EventSASVerified) // the user confirmed the SAS
	CallHold        CallEventType = CallEventType(sipua.EventHold)        // the peer put the call on hold
	CallResume      CallEventType = CallEventType(sipua.EventResume)      // the peer took it off hold
	CallAlert       CallEventType = CallEventType(sipua.EventAlert)       // something the user must see
	CallEnded       CallEventType = CallEventType(sipua.EventEnded)       // the call is over
	CallWarning     CallEventType = CallEventType(sipua.EventWarning)     // a limitation of this call the user should know
	CallListening   CallEventType = CallEventType(sipua.EventListening)   // Accept: waiting for a call at Peer
	CallPath        CallEventType = CallEventType(sipua.EventPath)        // the media path is known or changed: Path
)

// SecureInfo describes the keys of a call once ZRTP has finished.
type SecureInfo = sipua.SecureInfo

// Trust is how far a call's peer is trusted.
type Trust = sipua.Trust

// SignedHashState is what checking the peer's signed zrtp-hash found.
type SignedHashState = sipua.SignedHashState

// States of SecureInfo.SignedHash.
const (
	SignedHashVerified = sipua.SignedHashVerified // signed for this call by the contact device it names
	SignedHashMissing  = sipua.SignedHashMissing  // no signature: a standard phone, or removed on the way
	SignedHashInvalid  = sipua.SignedHashInvalid  // does not verify for this call: the call is unsafe
	SignedHashUnknown  = sipua.SignedHashUnknown  // signed by a device that is not among the contacts
	SignedHashOff      = sipua.SignedHashOff      // this side has no profile: nothing signed or checked
)

// Trust states of SecureInfo.Trust, and of a contact's messaging identity.
const (
	TrustUnverified = sipua.TrustUnverified // keys agreed, SAS not yet compared with this peer
	TrustVerified   = sipua.TrustVerified   // retained secret matched and the SAS was confirmed earlier
	TrustUnsafe     = sipua.TrustUnsafe     // retained secret mismatch: compare the SAS before trusting
)

// CallStats are a call's media counters.
type CallStats = sipua.Stats

// CallEvent is one thing a call reports.
type CallEvent struct {
	Type CallEventType
	Time time.Time
	// Reason explains CallAlert and CallEnded.
	Reason string
	// Peer, Codec and RemoteRTP describe a connected call.
	Peer, Codec, RemoteRTP string
	Secure                 *SecureInfo // CallSecure
	Stats                  *CallStats  // CallEnded

	// Path is the media path of CallPath: "host", "srflx" (through a
	// NAT, peer to peer) or "relay" (through the TURN relay).
	Path string
}

// MarshalJSON renders the event as one flat JSON object with an "event" key,
// the form 'phonex call --json' prints.
func (e CallEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(sipua.Event{Type: sipua.EventType(e.Type), Time: e.Time, Reason: e.Reason, Peer: e.Peer, Codec: e.Codec,
		RemoteRTP: e.RemoteRTP, Path: e.Path, Secure: e.Secure, Stats: e.Stats})
}

// ParseAlgorithms turns a comma-separated list such as "X255,DH3k" into
// algorithm names for CallOptions, checking each.
func ParseAlgorithms(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	out := strings.Split(list, ",")
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	if _, err := algos(out); err != nil {
		return nil, err
	}
	return out, nil
}

// algos packs 4-character names (RFC 6189 §5.1.2: a word, space padded).
func algos(names []string) ([]zrtp.Algo, error) {
	var out []zrtp.Algo
	for _, name := range names {
		if name == "" || len(name) > 4 {
			return nil, fmt.Errorf("%w %q: want a 4-character name such as X255, DH3k, B32, B256", ErrAlgorithm, name)
		}
		name = (name + "    ")[:4]
		out = append(out, zrtp.Algo(uint32(name[0])<<24|uint32(name[1])<<16|uint32(name[2])<<8|uint32(name[3])))
	}
	return out, nil
}

func (p *Phone) options(o CallOptions) (sipua.CallOptions, error) {
	return callOptions(o, p.store, p.signer, p.log)
}

// callOptions builds a call's options; signer is nil for calls without a
// profile, which neither sign nor check zrtp-hashes.
func callOptions(o CallOptions, store sipua.SecretStore, signer sipua.Signer, log *slog.Logger) (sipua.CallOptions, error) {
	kas, err := algos(o.KeyAgreements)
	if err != nil {
		return sipua.CallOptions{}, err
	}
	if kas != nil {
		// Keep Mult so the peer may add streams (RFC 6189 §4.4.3).
		kas = append(kas, zrtp.Mult)
	}
	sas, err := algos(o.SASTypes)
	if err != nil {
		return sipua.CallOptions{}, err
	}
	if len(sas) == 1 {
		// Preferred first, the other still accepted (RFC 6189 §5.1.6).
		if sas[0] == zrtp.B256 {
			sas = append(sas, zrtp.B32)
		} else {
			sas = append(sas, zrtp.B256)
		}
	}
	so := sipua.CallOptions{Record: o.Record, Cache: store, KeyAgreements: kas, SASTypes: sas, AllowInsecure: o.AllowInsecure,
		NoOpus: o.NoOpus, OpusBitrate: o.OpusBitrate, PTime: o.PTime, Logger: log, Signer: signer,
		ICE: sipua.ICEOptions{Servers: o.ICEServers, RelayOnly: o.Relay, Disabled: o.NoICE}}
	if o.Relay && o.NoICE {
		return so, errors.New("a relayed call needs ICE: drop NoICE")
	}
	if so.PTime == 0 {
		so.PTime = DefaultPTime
	}
	if o.OnEvent != nil {
		so.OnEvent = func(e sipua.Event) {
			o.OnEvent(CallEvent{Type: CallEventType(e.Type), Time: e.Time, Reason: e.Reason, Peer: e.Peer, Codec: e.Codec,
				RemoteRTP: e.RemoteRTP, Path: e.Path, Secure: e.Secure, Stats: e.Stats})
		}
	}
	if o.Play != nil {
		if so.Play, err = wav.Decode(o.Play); err != nil {
			return so, fmt.Errorf("play: %w", err)
		}
	}
	return so, nil
}

// Call is one call, direct or through the cluster: its SIP dialog and its
// SRTP media session.
type Call struct {
	c *sipua.Call
}

// Dial calls target (a SIP URI; "sip:" is added when missing) and returns
// once the call is connected. The media is encrypted with SRTP keyed by
// ZRTP; CallSecure carries the SAS to compare.
func (p *Phone) Dial(ctx context.Context, target string, o CallOptions) (*Call, error) {
	so, err := p.options(o)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", target, err)
	}
	if !strings.HasPrefix(target, "sip:") && !strings.HasPrefix(target, "sips:") {
		target = "sip:" + target
	}
	c, err := p.ua.Dial(ctx, target, so)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", target, err)
	}
	return &Call{c: c}, nil
}

// Accept waits for an incoming call and answers it.
func (p *Phone) Accept(ctx context.Context, o CallOptions) (*Call, error) {
	so, err := p.options(o)
	if err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if so.OnEvent != nil {
		so.OnEvent(sipua.Event{Type: sipua.EventListening, Time: time.Now(), Peer: p.ua.URI()})
	}
	c, err := p.ua.Accept(ctx, so)
	if err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	return &Call{c: c}, nil
}

// Done is closed when the call has ended.
func (c *Call) Done() <-chan struct{} { return c.c.Done() }

// Err is why the call ended: nil for a normal hang-up.
func (c *Call) Err() error { return c.c.Err() }

// Wait blocks until the call ends or ctx is done.
func (c *Call) Wait(ctx context.Context) error { return c.c.Wait(ctx) }

// Hangup sends BYE and ends the call.
func (c *Call) Hangup(ctx context.Context) error { return c.c.Hangup(ctx) }

// Hold puts the call on hold (on) or resumes it.
func (c *Call) Hold(ctx context.Context, on bool) error { return c.c.Hold(ctx, on) }

// Secure returns the outcome of the key agreement, or nil before it.
func (c *Call) Secure() *SecureInfo { return c.c.Secure() }

// Stats returns the media counters so far.
func (c *Call) Stats() CallStats { return c.c.Stats() }

// ConfirmSAS records that the user compared the SAS aloud with the peer and
// found it equal; later calls with this peer report PreviouslyVerified and
// trust "verified" while the retained secrets keep matching (RFC 6189 §7.1).
// Only a confirmed SAS makes a peer trusted.
func (c *Call) ConfirmSAS() error { return c.c.ConfirmSAS() }

// RejectSAS records that the peer read a different SAS: the peer is marked
// unsafe and the call's retained secrets are dropped.
func (c *Call) RejectSAS() error { return c.c.RejectSAS() }
