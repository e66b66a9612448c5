package codec

import (
	"errors"
	"testing"
	"time"
)

// Known pairs from ITU-T G.711 Tables 1a/2a and the G.191 reference tools.
func TestG711Vectors(t *testing.T) {
	ulaw := []struct {
		in   int16
		code byte
		out  int16
	}{
		{0, 0xFF, 0},
		{-1, 0x7F, 0},
		{1, 0xFF, 0},
		{4, 0xFE, 8},
		{-5, 0x7E, -8},
		{100, 0xF2, 104}, // code 0xF2 covers 100..107 and decodes to its middle
		{1000, 0xCE, 988},
		{-1000, 0x4E, -988},
		{32767, 0x80, 32124},
		{-32768, 0x00, -32124},
	}
	// Ends of the decoding tables as commonly printed.
	for code, want := range map[byte]int16{0x01: -31100, 0x7D: -16, 0x7E: -8, 0x81: 31100, 0xFE: 8} {
		if got := ULawToLinear(code); got != want {
			t.Errorf("ULawToLinear(%#02x) = %d, want %d", code, got, want)
		}
	}
	for code, want := range map[byte]int16{0x00: -5504, 0x01: -5248, 0x02: -6016, 0x80: 5504, 0xD4: 24} {
		if got := ALawToLinear(code); got != want {
			t.Errorf("ALawToLinear(%#02x) = %d, want %d", code, got, want)
		}
	}
	for _, v := range ulaw {
		if got := LinearToULaw(v.in); got != v.code {
			t.Errorf("LinearToULaw(%d) = %#02x, want %#02x", v.in, got, v.code)
		}
		if got := ULawToLinear(v.code); got != v.out {
			t.Errorf("ULawToLinear(%#02x) = %d, want %d", v.code, got, v.out)
		}
	}
	alaw := []struct {
		in   int16
		code byte
		out  int16
	}{
		{0, 0xD5, 8},
		{-1, 0x55, -8},
		{15, 0xD5, 8},
		{16, 0xD4, 24},
		{-16, 0x55, -8},
		{-17, 0x54, -24},
		{1000, 0xFA, 1008},
		{-1000, 0x7A, -1008},
		{32767, 0xAA, 32256},
		{-32768, 0x2A, -32256},
	}
	for _, v := range alaw {
		if got := LinearToALaw(v.in); got != v.code {
			t.Errorf("LinearToALaw(%d) = %#02x, want %#02x", v.in, got, v.code)
		}
		if got := ALawToLinear(v.code); got != v.out {
			t.Errorf("ALawToLinear(%#02x) = %d, want %d", v.code, got, v.out)
		}
	}
}

// Every code decodes to a value that encodes back to the same code (except
// μ-law's negative zero, 0x7F, which re-encodes as the positive 0xFF), and
// the quantisation error stays within half a step of the segment.
func TestG711CodeRoundTrip(t *testing.T) {
	for c := range 256 {
		b := byte(c)
		if got := LinearToALaw(ALawToLinear(b)); got != b {
			t.Errorf("A-law %#02x -> %d -> %#02x", b, ALawToLinear(b), got)
		}
		want := b
		if b == 0x7F {
			want = 0xFF
		}
		if got := LinearToULaw(ULawToLinear(b)); got != want {
			t.Errorf("μ-law %#02x -> %d -> %#02x", b, ULawToLinear(b), got)
		}
	}
	for s := -32768; s <= 32767; s += 7 {
		for _, c := range []struct {
			name string
			enc  func(int16) byte
			dec  func(byte) int16
		}{{"μ-law", LinearToULaw, ULawToLinear}, {"A-law", LinearToALaw, ALawToLinear}} {
			got := int(c.dec(c.enc(int16(s))))
			tol := 17 + abs(s)/16 // half the coarsest low step (A-law: 32), then 4 mantissa bits
			if s > 32124 || s < -32124 {
				tol = 1200 // clipping at the top of the last segment
			}
			if abs(got-s) > tol {
				t.Fatalf("%s %d -> %d, error %d > %d", c.name, s, got, abs(got-s), tol)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestG711Codec(t *testing.T) {
	for _, mk := range []func(time.Duration) (*G711, error){NewPCMU, NewPCMA} {
		c, err := mk(20 * time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if c.FrameSamples() != 160 || c.ClockRate() != 8000 {
			t.Fatalf("%s: frame %d rate %d", c.Name(), c.FrameSamples(), c.ClockRate())
		}
		pcm := make([]int16, 160)
		for i := range pcm {
			pcm[i] = int16(i * 100)
		}
		p, err := c.Encode(nil, pcm)
		if err != nil || len(p) != 160 {
			t.Fatalf("%s encode: %d bytes, %v", c.Name(), len(p), err)
		}
		out, err := c.Decode(nil, p)
		if err != nil || len(out) != 160 {
			t.Fatalf("%s decode: %d samples, %v", c.Name(), len(out), err)
		}
		if _, err := c.Encode(nil, pcm[:10]); !errors.Is(err, ErrFrameSize) {
			t.Fatalf("%s short frame: %v", c.Name(), err)
		}
		lost, _ := c.Decode(nil, nil)
		if len(lost) != 160 {
			t.Fatalf("%s lost frame: %d samples", c.Name(), len(lost))
		}
	}
	if _, err := NewPCMU(15 * time.Millisecond); err == nil {
		t.Fatal("15ms frame accepted")
	}
}
