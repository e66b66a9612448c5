//go:build cgo

package codec

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/dsp"
)

func TestOpusTone(t *testing.T) {
	requireOpus(t)
	for _, tt := range []struct {
		rate, bitrate int
		frame         time.Duration
	}{
		{16000, 16000, 20 * time.Millisecond},
		{16000, 8000, 60 * time.Millisecond},
		{8000, 12000, 40 * time.Millisecond},
		{48000, 20000, 20 * time.Millisecond},
		// Longer packets: several Opus frames in one packet (RFC 6716
		// §3.2), the default 120 ms among them.
		{16000, 21000, 80 * time.Millisecond},
		{16000, 21000, 100 * time.Millisecond},
		{16000, 21000, 120 * time.Millisecond},
	} {
		name := fmt.Sprintf("%dHz_%dbps_%v", tt.rate, tt.bitrate, tt.frame)
		t.Run(name, func(t *testing.T) {
			o, err := NewOpus(OpusConfig{SampleRate: tt.rate, Bitrate: tt.bitrate, Frame: tt.frame})
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			in := dsp.Sine(tt.rate, tt.rate, 440, 0.5) // one second
			var out []int16
			var bytes int
			var pkt []byte
			for i := 0; i+o.FrameSamples() <= len(in); i += o.FrameSamples() {
				pkt, err = o.Encode(pkt[:0], in[i:i+o.FrameSamples()])
				if err != nil {
					t.Fatal(err)
				}
				bytes += len(pkt)
				if d, err := OpusPacketDuration(pkt); err != nil || d != tt.frame {
					t.Fatalf("packet of %v says %v, %v", tt.frame, d, err)
				}
				if out, err = o.Decode(out, pkt); err != nil {
					t.Fatal(err)
				}
			}
			mid := out[len(out)/4 : len(out)*3/4]
			f, purity := dsp.DominantFrequency(mid, tt.rate, 100, min(float64(tt.rate)/2-100, 3000))
			if math.Abs(f-440) > 3 || purity < 0.8 {
				t.Fatalf("decoded tone %.1f Hz, purity %.2f", f, purity)
			}
			if kbps := float64(bytes*8) / 1000; kbps > float64(tt.bitrate)/1000*1.3 {
				t.Errorf("%.1f kbit/s for a %d bit/s target", kbps, tt.bitrate)
			}
			t.Logf("%d Hz %v: %.1f Hz purity %.2f, %.1f kbit/s", tt.rate, tt.frame, f, purity, float64(bytes*8)/1000)
		})
	}
}

func TestOpusLossAndFEC(t *testing.T) {
	requireOpus(t)
	o, err := NewOpus(OpusConfig{FEC: true, PacketLoss: 10, CBR: true})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	in := dsp.Sine(3200, 16000, 440, 0.5)
	var pkts [][]byte
	for i := 0; i < len(in); i += o.FrameSamples() {
		p, err := o.Encode(nil, in[i:i+o.FrameSamples()])
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	var out []int16
	for i, p := range pkts {
		switch {
		case i == 5:
			out, err = o.Decode(out, nil) // lost: concealment
		case i == 7:
			out, err = o.DecodeFEC(out, pkts[8]) // lost, recovered from the next packet
		default:
			out, err = o.Decode(out, p)
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if len(out) != (i+1)*o.FrameSamples() {
			t.Fatalf("frame %d: %d samples in total", i, len(out))
		}
	}
	if _, err := o.Decode(nil, []byte{0xFF, 0xFF, 0xFF}); err == nil {
		t.Error("garbage decoded")
	}
	if _, err := o.Encode(nil, in[:100]); err == nil {
		t.Error("short frame encoded")
	}
}

func TestOpusConfig(t *testing.T) {
	bad := []OpusConfig{
		{SampleRate: 44100},
		{Bitrate: 1000},
		{Frame: 30 * time.Millisecond},
		{PayloadType: 8},
		{PacketLoss: 101},
	}
	for _, c := range bad {
		if o, err := NewOpus(c); err == nil {
			o.Close()
			t.Errorf("%+v accepted", c)
		}
	}
	t.Log(OpusVersion())
}

func BenchmarkOpus20ms(b *testing.B) {
	requireOpus(b)
	for _, rate := range []int{16000, 48000} {
		o, err := NewOpus(OpusConfig{SampleRate: rate, Bitrate: 16000})
		if err != nil {
			b.Fatal(err)
		}
		in := dsp.Sine(o.FrameSamples(), rate, 440, 0.5)
		pkt, _ := o.Encode(nil, in)
		b.Run(fmt.Sprintf("encode/%dHz", rate), func(b *testing.B) {
			buf := make([]byte, 0, maxOpusPacket)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Encode(buf[:0], in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("decode/%dHz", rate), func(b *testing.B) {
			out := make([]int16, 0, rate*120/1000)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Decode(out[:0], pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
		o.Close()
	}
}
