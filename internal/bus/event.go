package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Kind says what an Event is for; each kind has its own subject.
type Kind string

// The kinds of events nodes exchange.
const (
	// KindWake: copies were stored for Devices; the node holding one of
	// them runs its delivery from the store.
	KindWake Kind = "wake"
	// KindHeld: the sending node now holds Devices[0]'s connection; any
	// other node holding an older one lets it go.
	KindHeld Kind = "held"
	// KindPresence: a change of a device held by the sending node
	// (Presence says which).
	KindPresence Kind = "presence"
	// KindHello: a node joined or came back to the bus; the others send
	// what their devices show (presence) and it wakes its devices.
	KindHello Kind = "hello"
	// KindBeat: the sending node is alive; a node silent for long loses
	// the presence of its devices on the others.
	KindBeat Kind = "beat"
	// KindSIP: a SIP request or response handed to one node (Hop.To) for a
	// device it holds, or back to the node that sent the request: calls and
	// their in-dialog requests cross nodes this way.
	KindSIP Kind = "sip"
)

// Limits of a decoded event: far above what a node sends, low enough
// that a hostile publisher cannot make a node hold much.
const (
	MaxEventSize = 64 << 10
	MaxDevices   = 1024
	maxNodeID    = 64
	maxName      = 320 // user@domain or a device name
	maxNote      = 1024
	maxCaps      = 32
)

// Errors of Decode, for callers that count what they drop.
var (
	ErrTooLarge    = errors.New("bus: event too large")
	ErrMalformed   = errors.New("bus: malformed event")
	ErrVersion     = errors.New("bus: unknown event version")
	ErrUnknownKind = errors.New("bus: unknown event kind")
)

// version of the encoding; a node drops events of another version, so a
// rolling upgrade that changes the encoding bumps it.
const version = 1

// Event is one message between nodes. Events carry device ids and, for
// presence, what watchers may see anyway; never message content.
type Event struct {
	V        int       `json:"v"`
	Node     string    `json:"node"`
	Kind     Kind      `json:"kind"`
	Devices  []int64   `json:"devices,omitempty"`
	Presence *Presence `json:"presence,omitempty"`
	Hop      *Hop      `json:"hop,omitempty"`
}

// Hop is a SIP message between two nodes. A request carries the id of its
// hop transaction, which the responses repeat; an initial INVITE carries
// the caller as the accepting node authenticated and gated it.
type Hop struct {
	To     string  `json:"to"`
	Tx     string  `json:"tx"`
	Msg    []byte  `json:"msg"` // the SIP message as on the wire (RFC 3261 §7)
	Caller *Caller `json:"caller,omitempty"`
}

// Caller is the authenticated device that sent an initial INVITE.
type Caller struct {
	AccountID int64  `json:"account_id"`
	DeviceID  int64  `json:"device_id"`
	Account   string `json:"account"`
	Device    string `json:"device"`
}

// Presence is a device's presence change as its holding node saw it.
type Presence struct {
	Change  string `json:"change"` // one of the Change… constants
	Account string `json:"account"`
	Device  string `json:"device"`
	// Connected: the device's certificate and capabilities, and until when
	// its registration holds (Unix ms).
	Caps          []string `json:"caps,omitempty"`
	CertHash      string   `json:"cert_hash,omitempty"`
	CertNotBefore int64    `json:"cert_not_before,omitempty"` // Unix s
	Until         int64    `json:"until,omitempty"`           // Unix ms
	// Published: the state and note (HasState false: a refresh), and the
	// publication's lifetime in ms (0 removes it).
	State    string `json:"state,omitempty"`
	Note     string `json:"note,omitempty"`
	HasState bool   `json:"has_state,omitempty"`
	Expires  int64  `json:"expires,omitempty"`
}

// Presence changes.
const (
	ChangeConnected    = "connected"
	ChangeDisconnected = "disconnected"
	ChangePublished    = "published"
	ChangeCallStarted  = "call_started"
	ChangeCallEnded    = "call_ended"
)

// Encode renders e for the bus.
func Encode(e Event) ([]byte, error) {
	e.V = version
	if err := e.check(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("bus: encode: %w", err)
	}
	if len(b) > MaxEventSize {
		return nil, ErrTooLarge
	}
	return b, nil
}

// Decode reads an event from the bus and checks every field.
func Decode(b []byte) (Event, error) {
	var e Event
	if len(b) > MaxEventSize {
		return e, ErrTooLarge
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := e.check(); err != nil {
		return Event{}, err
	}
	return e, nil
}

func (e Event) check() error {
	if e.V != version {
		return fmt.Errorf("%w %d", ErrVersion, e.V)
	}
	if err := CheckNodeID(e.Node); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(e.Devices) > MaxDevices {
		return fmt.Errorf("%w: %d devices", ErrMalformed, len(e.Devices))
	}
	for _, d := range e.Devices {
		if d <= 0 {
			return fmt.Errorf("%w: device id %d", ErrMalformed, d)
		}
	}
	switch e.Kind {
	case KindWake:
		if len(e.Devices) == 0 {
			return fmt.Errorf("%w: wake without devices", ErrMalformed)
		}
	case KindHeld:
		if len(e.Devices) != 1 {
			return fmt.Errorf("%w: held names one device", ErrMalformed)
		}
	case KindPresence:
		if e.Presence == nil || e.Hop != nil {
			return fmt.Errorf("%w: presence without a change", ErrMalformed)
		}
		return e.Presence.check()
	case KindSIP:
		if e.Hop == nil || e.Presence != nil {
			return fmt.Errorf("%w: sip without a message", ErrMalformed)
		}
		return e.Hop.check()
	case KindHello, KindBeat:
	default:
		return fmt.Errorf("%w %q", ErrUnknownKind, e.Kind)
	}
	if e.Presence != nil || e.Hop != nil {
		return fmt.Errorf("%w: payload on a %s event", ErrMalformed, e.Kind)
	}
	return nil
}

func (h *Hop) check() error {
	if err := CheckNodeID(h.To); err != nil {
		return fmt.Errorf("%w: hop to: %v", ErrMalformed, err)
	}
	if h.Tx == "" || len(h.Tx) > 64 || len(h.Msg) == 0 {
		return fmt.Errorf("%w: hop without a transaction or a message", ErrMalformed)
	}
	if c := h.Caller; c != nil && (c.AccountID <= 0 || c.DeviceID <= 0 || c.Account == "" || len(c.Account) > maxName ||
		c.Device == "" || len(c.Device) > maxName) {
		return fmt.Errorf("%w: hop caller out of bounds", ErrMalformed)
	}
	return nil
}

func (p *Presence) check() error {
	switch p.Change {
	case ChangeConnected, ChangeDisconnected, ChangePublished, ChangeCallStarted, ChangeCallEnded:
	default:
		return fmt.Errorf("%w: presence change %q", ErrMalformed, p.Change)
	}
	if p.Account == "" || len(p.Account) > maxName || p.Device == "" || len(p.Device) > maxName || len(p.Note) > maxNote ||
		len(p.CertHash) > 64 || len(p.State) > 32 || len(p.Caps) > maxCaps {
		return fmt.Errorf("%w: presence field out of bounds", ErrMalformed)
	}
	for _, c := range p.Caps {
		if c == "" || len(c) > 64 {
			return fmt.Errorf("%w: capability out of bounds", ErrMalformed)
		}
	}
	if p.Until < 0 || p.Expires < 0 || p.CertNotBefore < 0 {
		return fmt.Errorf("%w: negative time", ErrMalformed)
	}
	return nil
}

// CheckNodeID accepts 1 to 64 letters, digits, '-', '_' and '.': a node id
// is written into subjects and logs.
func CheckNodeID(id string) error {
	if id == "" || len(id) > maxNodeID {
		return fmt.Errorf("node id %q: 1 to %d characters", id, maxNodeID)
	}
	if strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return fmt.Errorf("node id %q: letters, digits, '-', '_' and '.' only", id)
	}
	return nil
}
