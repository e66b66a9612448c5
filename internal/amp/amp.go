// Package amp implements the application message protocols (AMPs) of the
// PhoneX message protocol (messaging protocol draft v2, §2.7 and §3): text
// (v1 plain, v2 AMPSimple with gzip and a nonce), notifications (file
// arrived, missed call, new certificate) and receipts (delivered, read), a
// dispatcher by ampType/ampVersion, and the messaging capability strings
// (§2.8.1) with the choice of the best common protocol.
//
// An AMP message is the payload an STP carries; this package only encodes
// and decodes it. Decoders never trust their input: sizes are bounded and
// gzip is inflated with a limit.
package amp

import (
	"errors"
	"fmt"
)

// AMP types (draft §3, messageProtocolType).
const (
	TypeText         int32 = 1 // v1 plain UTF-8, v2 AMPSimple
	TypeNotification int32 = 2 // v1 AMPNotification
	TypeReceipt      int32 = 3 // v1 AMPReceipt
	TypeCommand      int32 = 4 // reserved for commands
)

// Kind names one AMP: ampType and ampVersion.
type Kind struct {
	Type    int32
	Version int32
}

func (k Kind) String() string { return fmt.Sprintf("%d/%d", k.Type, k.Version) }

// Confidential reports whether messages of this kind must travel in an
// encrypting STP. Receipts and notifications carry no secret and may use
// STPSimpleAuth (DESIGN §5); text and anything unknown may not, so a
// receiver refuses them from an STP that does not encrypt.
func (k Kind) Confidential() bool {
	return k.Type != TypeReceipt && k.Type != TypeNotification
}

// Well-known AMPs.
var (
	TextV1         = Kind{TypeText, 1}
	TextV2         = Kind{TypeText, 2}
	NotificationV1 = Kind{TypeNotification, 1}
	ReceiptV1      = Kind{TypeReceipt, 1}
)

// Errors callers branch on.
var (
	// ErrUnknownType: no decoder for the ampType/ampVersion.
	ErrUnknownType = errors.New("amp: unknown message type")
	// ErrMalformed: the payload does not decode.
	ErrMalformed = errors.New("amp: malformed message")
	// ErrTooLarge: the message (or its decompressed text) exceeds a limit.
	ErrTooLarge = errors.New("amp: message too large")
)

// MaxPayload bounds an encoded AMP message.
const MaxPayload = 1 << 20

// Message is a decoded application message.
type Message interface {
	// Kind is the ampType/ampVersion the message is encoded as.
	Kind() Kind
	// Marshal encodes the message as its Kind.
	Marshal() ([]byte, error)
}

// Decoder decodes one AMP's payload.
type Decoder func(payload []byte) (Message, error)

// Dispatcher routes payloads to decoders by ampType and ampVersion (draft
// §3.1, AmpDispatcher). It is not safe to Register concurrently with Decode.
type Dispatcher struct {
	decoders map[Kind]Decoder
}

// NewDispatcher returns a dispatcher with text v1 and v2, notification v1
// and receipt v1 registered.
func NewDispatcher() *Dispatcher {
	return &Dispatcher{decoders: map[Kind]Decoder{
		TextV1:         decodeTextV1,
		TextV2:         decodeTextV2,
		NotificationV1: decodeNotification,
		ReceiptV1:      decodeReceipt,
	}}
}

// Register adds or replaces the decoder for k.
func (d *Dispatcher) Register(k Kind, dec Decoder) error {
	if dec == nil {
		return fmt.Errorf("register AMP %v: nil decoder", k)
	}
	d.decoders[k] = dec
	return nil
}

// Decode decodes payload as the AMP k.
func (d *Dispatcher) Decode(k Kind, payload []byte) (Message, error) {
	dec, ok := d.decoders[k]
	if !ok {
		return nil, fmt.Errorf("decode AMP %v: %w", k, ErrUnknownType)
	}
	if len(payload) > MaxPayload {
		return nil, fmt.Errorf("decode AMP %v: %d bytes: %w", k, len(payload), ErrTooLarge)
	}
	m, err := dec(payload)
	if err != nil {
		return nil, fmt.Errorf("decode AMP %v: %w", k, err)
	}
	return m, nil
}
