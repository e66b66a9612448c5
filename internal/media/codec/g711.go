package codec

import (
	"fmt"
	"time"
)

// G.711 runs at 8 kHz, one byte per sample (RFC 3551 §4.5.14).
const g711Rate = 8000

// Static RTP payload types of RFC 3551 Table 4.
const (
	PayloadTypePCMU = 0
	PayloadTypePCMA = 8
)

// G711 is a G.711 codec, μ-law (PCMU) or A-law (PCMA).
type G711 struct {
	alaw    bool
	frame   time.Duration
	samples int
}

// NewPCMU returns a μ-law codec with the given frame duration (a multiple
// of 10 ms up to 120 ms; 20 ms is the RFC 3551 default).
func NewPCMU(frame time.Duration) (*G711, error) { return newG711(false, frame) }

// NewPCMA returns an A-law codec with the given frame duration.
func NewPCMA(frame time.Duration) (*G711, error) { return newG711(true, frame) }

func newG711(alaw bool, frame time.Duration) (*G711, error) {
	if frame <= 0 || frame > 120*time.Millisecond || frame%(10*time.Millisecond) != 0 {
		return nil, fmt.Errorf("codec: G.711 frame %v: want a multiple of 10ms up to 120ms", frame)
	}
	return &G711{alaw: alaw, frame: frame, samples: int(frame * g711Rate / time.Second)}, nil
}

// Name implements Codec.
func (g *G711) Name() string {
	if g.alaw {
		return "PCMA"
	}
	return "PCMU"
}

// PayloadType implements Codec.
func (g *G711) PayloadType() uint8 {
	if g.alaw {
		return PayloadTypePCMA
	}
	return PayloadTypePCMU
}

// SampleRate implements Codec.
func (g *G711) SampleRate() int { return g711Rate }

// ClockRate implements Codec.
func (g *G711) ClockRate() int { return g711Rate }

// FrameDuration implements Codec.
func (g *G711) FrameDuration() time.Duration { return g.frame }

// FrameSamples implements Codec.
func (g *G711) FrameSamples() int { return g.samples }

// Encode implements Codec.
func (g *G711) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if len(pcm) != g.samples {
		return dst, fmt.Errorf("%s encode %d samples, want %d: %w", g.Name(), len(pcm), g.samples, ErrFrameSize)
	}
	for _, s := range pcm {
		if g.alaw {
			dst = append(dst, LinearToALaw(s))
		} else {
			dst = append(dst, LinearToULaw(s))
		}
	}
	return dst, nil
}

// Decode implements Codec. A lost frame (nil payload) becomes silence:
// G.711 has no concealment of its own (ITU-T G.711 Appendix I describes
// one; silence is what RFC 3551 peers commonly do).
func (g *G711) Decode(dst []int16, payload []byte) ([]int16, error) {
	if payload == nil {
		for range g.samples {
			dst = append(dst, 0)
		}
		return dst, nil
	}
	for _, b := range payload {
		if g.alaw {
			dst = append(dst, ALawToLinear(b))
		} else {
			dst = append(dst, ULawToLinear(b))
		}
	}
	return dst, nil
}

// Close implements Codec.
func (g *G711) Close() error { return nil }

// LinearToULaw compresses one 16-bit sample to μ-law (ITU-T G.711 Table
// 2a). The magnitude of a negative sample is its one's complement, as in
// the ITU-T G.191 reference tools, so -1 and 0 map to the two zero codes.
func LinearToULaw(s int16) byte {
	var sign byte
	mag := int(s)
	if s < 0 {
		sign = 0x80
		mag = int(^s)
	}
	// 14-bit magnitude plus the bias of 33 that makes the segments
	// power-of-two aligned.
	m := mag>>2 + 33
	if m > 0x1FFF {
		m = 0x1FFF
	}
	seg := 0
	for v := m >> 6; v > 0; v >>= 1 {
		seg++
	}
	mant := (m >> (seg + 1)) & 0x0F
	return ^(sign | byte(seg)<<4 | byte(mant))
}

// ULawToLinear expands a μ-law byte to a 16-bit sample.
func ULawToLinear(b byte) int16 {
	b = ^b
	seg := (b >> 4) & 0x07
	mant := int(b & 0x0F)
	v := ((mant<<3)+0x84)<<seg - 0x84
	if b&0x80 != 0 {
		return int16(-v)
	}
	return int16(v)
}

// LinearToALaw compresses one 16-bit sample to A-law (ITU-T G.711 Table
// 1a), even bits inverted as the standard transmits them.
func LinearToALaw(s int16) byte {
	var sign byte = 0x80
	mag := int(s)
	if s < 0 {
		sign = 0
		mag = int(^s)
	}
	m := mag >> 4 // 12-bit magnitude
	var code int
	if m < 32 {
		// Segments 0 and 1 share a step size.
		code = m
	} else {
		seg := 1
		for m > 31 {
			m >>= 1
			seg++
		}
		code = seg<<4 | (m - 16)
	}
	return (sign | byte(code)) ^ 0x55
}

// ALawToLinear expands an A-law byte to a 16-bit sample.
func ALawToLinear(b byte) int16 {
	b ^= 0x55
	seg := int(b>>4) & 0x07
	mant := int(b & 0x0F)
	var v int
	if seg == 0 {
		v = mant<<4 + 8
	} else {
		v = (mant<<4 + 0x108) << (seg - 1)
	}
	if b&0x80 == 0 {
		return int16(-v)
	}
	return int16(v)
}
