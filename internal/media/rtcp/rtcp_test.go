package rtcp

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func TestReception(t *testing.T) {
	for _, tc := range []struct {
		name     string
		seqs     []uint16
		expected uint64
		lost     int64
		fraction uint8
		highest  uint32
	}{
		{"in order", []uint16{10, 11, 12, 13}, 4, 0, 0, 13},
		{"one lost of four", []uint16{10, 11, 13}, 4, 1, 64, 13},
		{"reordered", []uint16{10, 12, 11, 13}, 4, 0, 0, 13},
		{"duplicate", []uint16{10, 11, 11, 12}, 3, -1, 0, 12},
		{"wrap", []uint16{65534, 65535, 1}, 4, 1, 64, 65536 + 1},
		{"half lost", []uint16{0, 2, 4, 6}, 7, 3, 109, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReception(48000)
			for i, s := range tc.seqs {
				r.Update(7, s, uint32(s)*960, t0.Add(time.Duration(i)*20*time.Millisecond))
			}
			b := r.Block()
			if r.Expected() != tc.expected || r.Lost() != tc.lost || b.FractionLost != tc.fraction || b.HighestSeq != tc.highest || b.SSRC != 7 {
				t.Fatalf("expected %d lost %d block %+v", r.Expected(), r.Lost(), b)
			}
			// A second report covers only what came since the first.
			if b := r.Block(); b.FractionLost != 0 {
				t.Errorf("second interval fraction %d", b.FractionLost)
			}
		})
	}
}

func TestJitter(t *testing.T) {
	r := NewReception(48000)
	// Packets every 20 ms arriving alternately 0 and 10 ms late: each
	// transit difference is 10 ms (480 ticks), so the jitter tends to it.
	for i := range 200 {
		late := time.Duration(i%2) * 10 * time.Millisecond
		r.Update(1, uint16(i), uint32(i*960), t0.Add(time.Duration(i)*20*time.Millisecond+late))
	}
	if j := r.Jitter(); j < 9*time.Millisecond || j > 10*time.Millisecond {
		t.Fatalf("jitter %v", j)
	}
}

func TestReportRoundTrip(t *testing.T) {
	in := []Block{{SSRC: 0xCAFE, FractionLost: 13, TotalLost: -2, HighestSeq: 70000, Jitter: 480}}
	b, err := MarshalReceiverReport(0xBEEF, "phonex", in...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := ParseReports(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != in[0] {
		t.Fatalf("got %+v, want %+v", out, in)
	}
	if got := in[0].LossPercent(); got < 5 || got > 5.1 {
		t.Errorf("loss %.2f%%", got)
	}
	if _, err := ParseReports(b[:5]); !errors.Is(err, ErrPacket) {
		t.Errorf("truncated: %v", err)
	}
}

func FuzzParseReports(f *testing.F) {
	b, _ := MarshalReceiverReport(1, "x", Block{SSRC: 2, FractionLost: 3})
	f.Add(b)
	f.Add([]byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x81, 201, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		blocks, err := ParseReports(in)
		if err != nil && !errors.Is(err, ErrPacket) {
			t.Fatalf("error %v is not ErrPacket", err)
		}
		for _, b := range blocks {
			if b.TotalLost > 0x7FFFFF || b.TotalLost < -0x800000 {
				t.Fatalf("total lost %d out of 24 bits", b.TotalLost)
			}
		}
	})
}
