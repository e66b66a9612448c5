package stp

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/wire"
)

// RatchetV1 is the ratchet STP: the payload is encrypted once and its key
// travels through each recipient device's Double Ratchet session. The
// sessions live on the devices, so this package only encodes the wire
// message; the client seals and opens it with internal/ratchet.
var RatchetV1 = Protocol{Type: TypeRatchet, Version: 1}

// MaxRatchetSlots bounds the recipient devices of one message.
const MaxRatchetSlots = MaxKeySlots

// RatchetMessage is an STPRatchet message.
type RatchetMessage struct {
	AmpType     int32
	AmpVersion  int32
	Sent        time.Time
	Nonce       uint32
	Sender      string
	Destination string
	Slots       []RatchetSlot
	Body        []byte
}

// RatchetSlot is one recipient device's ratchet message.
type RatchetSlot struct {
	Recipient string
	Header    []byte
}

// AD is the associated data that binds the header fields to the body: the
// deterministic protobuf serialisation of fields 1-7, after a label.
func (m *RatchetMessage) AD() ([]byte, error) {
	h := &wire.STPRatchet{
		AmpType: proto.Int32(m.AmpType), AmpVersion: proto.Int32(m.AmpVersion),
		MessageSentMiliUTC: proto.Uint64(uint64(m.Sent.UnixMilli())), RandomNonce: proto.Uint32(m.Nonce),
		Sender: proto.String(m.Sender), Destination: proto.String(m.Destination),
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	if err != nil {
		return nil, err
	}
	return append([]byte("phonex/v1/stp-ratchet\x00"), b...), nil
}

// MarshalRatchet encodes m in an envelope.
func MarshalRatchet(m *RatchetMessage) ([]byte, error) {
	w := &wire.STPRatchet{
		AmpType: proto.Int32(m.AmpType), AmpVersion: proto.Int32(m.AmpVersion),
		MessageSentMiliUTC: proto.Uint64(uint64(m.Sent.UnixMilli())), RandomNonce: proto.Uint32(m.Nonce),
		Sender: proto.String(m.Sender), Destination: proto.String(m.Destination), Body: m.Body,
	}
	for _, s := range m.Slots {
		w.Slots = append(w.Slots, &wire.RatchetSlot{Recipient: proto.String(s.Recipient), Header: s.Header})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(w)
	if err != nil {
		return nil, err
	}
	return MarshalEnvelope(RatchetV1, b)
}

// ParseRatchet decodes the payload of a RatchetV1 envelope and checks that
// every field is present.
func ParseRatchet(payload []byte) (*RatchetMessage, error) {
	if len(payload) > MaxMessageSize {
		return nil, fmt.Errorf("STPRatchet of %d bytes: %w", len(payload), ErrMalformed)
	}
	var w wire.STPRatchet
	if err := proto.Unmarshal(payload, &w); err != nil {
		return nil, fmt.Errorf("STPRatchet: %v: %w", err, ErrMalformed)
	}
	if w.AmpType == nil || w.AmpVersion == nil || w.MessageSentMiliUTC == nil || w.RandomNonce == nil || w.Sender == nil ||
		w.Destination == nil || w.Body == nil || len(w.Slots) == 0 {
		return nil, fmt.Errorf("STPRatchet: required field missing: %w", ErrMalformed)
	}
	if len(w.Slots) > MaxRatchetSlots {
		return nil, fmt.Errorf("STPRatchet: %d slots: %w", len(w.Slots), ErrMalformed)
	}
	if w.GetMessageSentMiliUTC() > 1<<62 {
		return nil, fmt.Errorf("STPRatchet: time out of range: %w", ErrMalformed)
	}
	m := &RatchetMessage{AmpType: w.GetAmpType(), AmpVersion: w.GetAmpVersion(), Sent: time.UnixMilli(int64(w.GetMessageSentMiliUTC())),
		Nonce: w.GetRandomNonce(), Sender: w.GetSender(), Destination: w.GetDestination(), Body: w.Body}
	for _, s := range w.Slots {
		if s.Recipient == nil || s.Header == nil {
			return nil, fmt.Errorf("STPRatchet: slot without recipient or header: %w", ErrMalformed)
		}
		m.Slots = append(m.Slots, RatchetSlot{Recipient: s.GetRecipient(), Header: s.Header})
	}
	return m, nil
}

// Slot returns the header for recipient, or ErrNotForMe.
func (m *RatchetMessage) Slot(recipient string) ([]byte, error) {
	for _, s := range m.Slots {
		if s.Recipient == recipient {
			return s.Header, nil
		}
	}
	return nil, fmt.Errorf("no ratchet slot for %s: %w", recipient, ErrNotForMe)
}
