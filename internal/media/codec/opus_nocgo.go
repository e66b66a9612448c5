//go:build !cgo

package codec

import (
	"fmt"
	"time"
)

// Opus is unavailable in a build without cgo; NewOpus says so.
type Opus struct{}

// DefaultOpusLibrary is the libopus a cgo build loads.
const DefaultOpusLibrary = "libopus.so.0"

// LoadOpusLibrary reports that Opus is missing.
func LoadOpusLibrary(string) error { return errNoCgo }

var errNoCgo = fmt.Errorf("%w: built without cgo (rebuild with CGO_ENABLED=1, or use PCMU/PCMA)", ErrOpusUnavailable)

// OpusUnavailableReason says why Opus cannot be used.
func OpusUnavailableReason() string { return "built without cgo" }

// OpusVersion reports that Opus is missing.
func OpusVersion() string { return "unavailable (built without cgo)" }

// NewOpus returns ErrOpusUnavailable.
func NewOpus(cfg OpusConfig) (*Opus, error) {
	if _, err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	return nil, errNoCgo
}

func (o *Opus) SetBitrate(int) error                         { return ErrOpusUnavailable }
func (o *Opus) SetPacketLoss(int) error                      { return ErrOpusUnavailable }
func (o *Opus) SetFrameDuration(time.Duration) error         { return ErrOpusUnavailable }
func (o *Opus) Settings() OpusConfig                         { return OpusConfig{} }
func (o *Opus) Name() string                                 { return "opus" }
func (o *Opus) PayloadType() uint8                           { return DefaultOpusPayloadType }
func (o *Opus) SampleRate() int                              { return 0 }
func (o *Opus) ClockRate() int                               { return opusClockRate }
func (o *Opus) FrameDuration() time.Duration                 { return 0 }
func (o *Opus) FrameSamples() int                            { return 0 }
func (o *Opus) Encode(dst []byte, _ []int16) ([]byte, error) { return dst, ErrOpusUnavailable }
func (o *Opus) Decode(dst []int16, _ []byte) ([]int16, error) {
	return dst, ErrOpusUnavailable
}
func (o *Opus) DecodeFEC(dst []int16, _ []byte) ([]int16, error) {
	return dst, ErrOpusUnavailable
}
func (o *Opus) Close() error { return nil }
