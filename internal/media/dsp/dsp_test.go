package dsp

import (
	"math"
	"testing"
)

func TestDominantFrequency(t *testing.T) {
	for _, f := range []float64{300, 440, 1000, 3100} {
		got, purity := DominantFrequency(Sine(8000, 16000, f, 0.5), 16000, 100, 4000)
		if math.Abs(got-f) > 0.5 || purity < 0.8 {
			t.Errorf("%v Hz: got %.1f Hz, purity %.2f", f, got, purity)
		}
	}
	if _, p := DominantFrequency(make([]int16, 100), 8000, 100, 1000); p != 0 {
		t.Errorf("silence purity %v", p)
	}
}

func TestResampleKeepsTone(t *testing.T) {
	chains := [][]int{
		{44100, 48000, 8000},
		{8000, 48000},
		{48000, 16000},
		{16000, 44100},
		{22050, 11025},
	}
	for _, chain := range chains {
		x := Sine(chain[0], chain[0], 440, 0.5) // one second
		for i := 1; i < len(chain); i++ {
			var err error
			if x, err = Resample(x, chain[i-1], chain[i]); err != nil {
				t.Fatal(err)
			}
		}
		rate := chain[len(chain)-1]
		if len(x) != rate {
			t.Errorf("%v: %d samples, want %d", chain, len(x), rate)
		}
		// Skip the filter's ramp at each end.
		mid := x[rate/10 : rate*9/10]
		f, purity := DominantFrequency(mid, rate, 100, 2000)
		if math.Abs(f-440) > 1 || purity < 0.9 {
			t.Errorf("%v: tone at %.1f Hz, purity %.3f", chain, f, purity)
		}
		if a := rms(mid); math.Abs(a-0.5/math.Sqrt2) > 0.02 {
			t.Errorf("%v: RMS %.3f, want %.3f", chain, a, 0.5/math.Sqrt2)
		}
	}
}

// A tone above the new Nyquist frequency must not fold back into the band.
func TestResampleRejectsAlias(t *testing.T) {
	x := Sine(48000, 48000, 6000, 0.5) // aliases to 2000 Hz at 8 kHz
	y, err := Resample(x, 48000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	if a := rms(y[800 : len(y)-800]); a > 0.5/math.Sqrt2/1000 {
		t.Fatalf("alias RMS %.5f, want under -60 dB", a)
	}
}

func TestResampleStreamingMatchesWhole(t *testing.T) {
	x := Sine(4410, 44100, 1000, 0.3)
	whole, _ := Resample(x, 44100, 48000)
	r, _ := NewResampler(44100, 48000)
	var got []int16
	for i := 0; i < len(x); i += 441 {
		got = r.Process(got, x[i:min(i+441, len(x))])
	}
	got = r.Flush(got)
	if len(got) != len(whole) {
		t.Fatalf("streamed %d samples, whole %d", len(got), len(whole))
	}
	for i := range got {
		if got[i] != whole[i] {
			t.Fatalf("sample %d: %d != %d", i, got[i], whole[i])
		}
	}
}

func TestResampleErrors(t *testing.T) {
	for _, r := range [][2]int{{0, 8000}, {8000, 1e6}, {44101, 48000}} {
		if _, err := NewResampler(r[0], r[1]); err == nil {
			t.Errorf("%v accepted", r)
		}
	}
}

func BenchmarkResample48kTo16k(b *testing.B) {
	x := Sine(960, 48000, 440, 0.5)
	r, _ := NewResampler(48000, 16000)
	out := make([]int16, 0, 400)
	b.ReportAllocs()
	for b.Loop() {
		out = r.Process(out[:0], x)
	}
}

func rms(x []int16) float64 {
	var s float64
	for _, v := range x {
		f := float64(v) / 32768
		s += f * f
	}
	return math.Sqrt(s / float64(len(x)))
}
