// Package codec holds the audio codecs of a call behind one interface: Opus
// (RFC 6716, carried as RFC 7587 describes) through libopus, loaded at run
// time so that a build needs no libopus headers, and G.711
// μ-law and A-law (ITU-T G.711, RTP payload types 0 and 8 of RFC 3551) in
// pure Go as the fallback for peers without Opus.
package codec

import (
	"errors"
	"time"
)

// Codec encodes and decodes one frame of 16-bit mono PCM at a time.
//
// A Codec is not safe for concurrent use; a call uses one for sending and
// another for receiving.
type Codec interface {
	// Name is the SDP encoding name: "opus", "PCMU" or "PCMA".
	Name() string
	// PayloadType is the RTP payload type to send (static for G.711,
	// the negotiated dynamic one for Opus).
	PayloadType() uint8
	// SampleRate is the rate of the PCM given to Encode and returned by
	// Decode.
	SampleRate() int
	// ClockRate is the RTP timestamp rate (48000 for Opus whatever its
	// internal rate, RFC 7587 §4.1; 8000 for G.711).
	ClockRate() int
	// FrameDuration is the audio carried by one packet.
	FrameDuration() time.Duration
	// FrameSamples is the number of PCM samples of one frame at SampleRate.
	FrameSamples() int
	// Encode appends the payload for exactly one frame of PCM to dst.
	Encode(dst []byte, pcm []int16) ([]byte, error)
	// Decode appends one frame of PCM decoded from payload to dst. A nil
	// payload means the packet was lost: the codec conceals it.
	Decode(dst []int16, payload []byte) ([]int16, error)
	// Close releases the codec's resources.
	Close() error
}

// FECDecoder is a Codec that can rebuild a lost frame from the forward
// error correction data carried in the packet after it (Opus in-band FEC,
// RFC 6716 §2.1.7).
type FECDecoder interface {
	// HasFEC reports whether payload carries FEC data for the frame
	// before it.
	HasFEC(payload []byte) bool
	// DecodeFEC appends the frame before next, rebuilt from next's FEC
	// data; without such data it conceals, as Decode(dst, nil) does.
	DecodeFEC(dst []int16, next []byte) ([]int16, error)
}

// LossAdapter is a Codec whose encoder can be told the packet loss the
// peer reports (RTCP, RFC 3550 §6.4.2), to protect its stream accordingly.
type LossAdapter interface {
	SetPacketLoss(percent int) error
}

// PacketTimer is a Codec whose packets say how much audio they carry, so
// that a receiver can follow a peer that sends another packet time than
// its SDP said (a=ptime is only a preference, RFC 4566 §6).
type PacketTimer interface {
	PacketDuration(payload []byte) (time.Duration, error)
	// SetFrameDuration changes the frame of Encode, Decode and
	// concealment.
	SetFrameDuration(d time.Duration) error
}

var (
	// ErrFrameSize is returned when Encode gets other than one frame.
	ErrFrameSize = errors.New("codec: PCM is not exactly one frame")
	// ErrOpusUnavailable is returned by NewOpus when libopus cannot be
	// loaded (install libopus0) or in a build without cgo.
	ErrOpusUnavailable = errors.New("codec: Opus unavailable")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("codec: closed")
)

var (
	_ Codec       = (*G711)(nil)
	_ Codec       = (*Opus)(nil)
	_ FECDecoder  = (*Opus)(nil)
	_ LossAdapter = (*Opus)(nil)
	_ PacketTimer = (*Opus)(nil)
)
