//go:build cgo

package codec

/*
#cgo pkg-config: opus
#include <opus.h>

// opus_encoder_ctl is variadic, which cgo cannot call: one wrapper per
// request we use.
static int px_set_int(OpusEncoder *e, int req, opus_int32 v) {
	switch (req) {
	case OPUS_SET_BITRATE_REQUEST: return opus_encoder_ctl(e, OPUS_SET_BITRATE(v));
	case OPUS_SET_COMPLEXITY_REQUEST: return opus_encoder_ctl(e, OPUS_SET_COMPLEXITY(v));
	case OPUS_SET_DTX_REQUEST: return opus_encoder_ctl(e, OPUS_SET_DTX(v));
	case OPUS_SET_INBAND_FEC_REQUEST: return opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(v));
	case OPUS_SET_PACKET_LOSS_PERC_REQUEST: return opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(v));
	case OPUS_SET_VBR_REQUEST: return opus_encoder_ctl(e, OPUS_SET_VBR(v));
	case OPUS_SET_SIGNAL_REQUEST: return opus_encoder_ctl(e, OPUS_SET_SIGNAL(v));
	}
	return OPUS_UNIMPLEMENTED;
}
*/
import "C"

import (
	"fmt"
	"time"
	"unsafe"
)

// Opus is an Opus encoder and decoder (RFC 6716) in libopus, for 16-bit
// mono PCM. Each has its own state: Encode and Decode may be called from
// two goroutines, but neither from two at once.
type Opus struct {
	cfg     OpusConfig
	samples int
	enc     *C.OpusEncoder
	dec     *C.OpusDecoder
}

// OpusVersion is the libopus version string.
func OpusVersion() string { return C.GoString(C.opus_get_version_string()) }

// NewOpus creates an Opus codec. Close it to free the C state.
func NewOpus(cfg OpusConfig) (*Opus, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	o := &Opus{cfg: c, samples: int(c.Frame * time.Duration(c.SampleRate) / time.Second)}
	var cerr C.int
	o.enc = C.opus_encoder_create(C.opus_int32(c.SampleRate), 1, C.OPUS_APPLICATION_VOIP, &cerr)
	if cerr != C.OPUS_OK || o.enc == nil {
		return nil, fmt.Errorf("codec: create Opus encoder: %w", opusError(cerr))
	}
	o.dec = C.opus_decoder_create(C.opus_int32(c.SampleRate), 1, &cerr)
	if cerr != C.OPUS_OK || o.dec == nil {
		o.Close()
		return nil, fmt.Errorf("codec: create Opus decoder: %w", opusError(cerr))
	}
	vbr := 1
	if c.CBR {
		vbr = 0
	}
	for _, s := range []struct {
		name string
		req  C.int
		v    int
	}{
		{"bitrate", C.OPUS_SET_BITRATE_REQUEST, c.Bitrate},
		{"complexity", C.OPUS_SET_COMPLEXITY_REQUEST, *c.Complexity},
		{"VBR", C.OPUS_SET_VBR_REQUEST, vbr},
		{"DTX", C.OPUS_SET_DTX_REQUEST, b2i(c.DTX)},
		{"FEC", C.OPUS_SET_INBAND_FEC_REQUEST, b2i(c.FEC)},
		{"packet loss", C.OPUS_SET_PACKET_LOSS_PERC_REQUEST, c.PacketLoss},
		{"signal", C.OPUS_SET_SIGNAL_REQUEST, C.OPUS_SIGNAL_VOICE},
	} {
		if r := C.px_set_int(o.enc, s.req, C.opus_int32(s.v)); r != C.OPUS_OK {
			o.Close()
			return nil, fmt.Errorf("codec: set Opus %s to %d: %w", s.name, s.v, opusError(r))
		}
	}
	return o, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetBitrate changes the target bitrate during a call.
func (o *Opus) SetBitrate(bps int) error {
	if o.enc == nil {
		return ErrClosed
	}
	if bps < 6000 || bps > 64000 {
		return fmt.Errorf("codec: Opus bitrate %d: want 6000..64000 bit/s", bps)
	}
	if r := C.px_set_int(o.enc, C.OPUS_SET_BITRATE_REQUEST, C.opus_int32(bps)); r != C.OPUS_OK {
		return fmt.Errorf("codec: set Opus bitrate: %w", opusError(r))
	}
	o.cfg.Bitrate = bps
	return nil
}

// Name implements Codec.
func (o *Opus) Name() string { return "opus" }

// PayloadType implements Codec.
func (o *Opus) PayloadType() uint8 { return o.cfg.PayloadType }

// SampleRate implements Codec.
func (o *Opus) SampleRate() int { return o.cfg.SampleRate }

// ClockRate implements Codec.
func (o *Opus) ClockRate() int { return opusClockRate }

// FrameDuration implements Codec.
func (o *Opus) FrameDuration() time.Duration { return o.cfg.Frame }

// FrameSamples implements Codec.
func (o *Opus) FrameSamples() int { return o.samples }

// Encode implements Codec. With DTX on, a frame of silence may encode to
// one or two bytes, which a sender need not transmit (RFC 7587 §3.1.3).
func (o *Opus) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if o.enc == nil {
		return dst, ErrClosed
	}
	if len(pcm) != o.samples {
		return dst, fmt.Errorf("opus encode %d samples, want %d: %w", len(pcm), o.samples, ErrFrameSize)
	}
	n0 := len(dst)
	dst = grow(dst, maxOpusPacket)
	out := dst[n0 : n0+maxOpusPacket]
	n := C.opus_encode(o.enc, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(o.samples),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.opus_int32(len(out)))
	if n < 0 {
		return dst[:n0], fmt.Errorf("codec: Opus encode: %w", opusError(n))
	}
	return dst[:n0+int(n)], nil
}

// Decode implements Codec. A nil payload runs libopus's packet loss
// concealment for one frame.
func (o *Opus) Decode(dst []int16, payload []byte) ([]int16, error) {
	return o.decode(dst, payload, false)
}

// DecodeFEC conceals a lost frame with the forward error correction data
// carried in the packet that follows it (RFC 6716 §2.1.7); without FEC in
// that packet it behaves as Decode(dst, nil).
func (o *Opus) DecodeFEC(dst []int16, next []byte) ([]int16, error) {
	return o.decode(dst, next, true)
}

func (o *Opus) decode(dst []int16, payload []byte, fec bool) ([]int16, error) {
	if o.dec == nil {
		return dst, ErrClosed
	}
	// A packet may hold up to 120 ms (RFC 6716 §3.2.5); for loss and FEC
	// the frame size must be exactly the missing duration.
	limit := o.cfg.SampleRate * 120 / 1000
	if payload == nil || fec {
		limit = o.samples
	}
	n0 := len(dst)
	dst = grow(dst, limit)
	out := dst[n0 : n0+limit]
	var data *C.uchar
	if len(payload) > 0 {
		data = (*C.uchar)(unsafe.Pointer(&payload[0]))
	}
	n := C.opus_decode(o.dec, data, C.opus_int32(len(payload)),
		(*C.opus_int16)(unsafe.Pointer(&out[0])), C.int(limit), C.int(b2i(fec)))
	if n < 0 {
		return dst[:n0], fmt.Errorf("codec: Opus decode %d bytes: %w", len(payload), opusError(n))
	}
	return dst[:n0+int(n)], nil
}

// Close implements Codec.
func (o *Opus) Close() error {
	if o.enc != nil {
		C.opus_encoder_destroy(o.enc)
		o.enc = nil
	}
	if o.dec != nil {
		C.opus_decoder_destroy(o.dec)
		o.dec = nil
	}
	return nil
}

// OpusError is a libopus error code.
type OpusError int

func (e OpusError) Error() string {
	return "libopus: " + C.GoString(C.opus_strerror(C.int(e)))
}

func opusError[T ~int32](code T) error { return OpusError(code) }

func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) < n {
		s = append(s[:cap(s)], make([]T, n-(cap(s)-len(s)))...)[:len(s)]
	}
	return s[:len(s)+n]
}
