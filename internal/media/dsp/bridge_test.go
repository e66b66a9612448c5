package dsp

import (
	"math"
	"slices"
	"testing"
)

func correlation(a, b []int16) float64 {
	var xy, xx, yy float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		xy += x * y
		xx += x * x
		yy += y * y
	}
	return xy / math.Sqrt(xx*yy)
}

// A steady tone cut by a gap is rebuilt across it: past the codec's lead,
// the bridge follows the tone itself, whatever the concealment gave (here
// silence, the worst case).
func TestBridgeTone(t *testing.T) {
	const rate, gap = 16000, 1920 // 120 ms
	for _, f := range []float64{110, 150, 200, 220, 440} {
		x := Sine(8000, rate, f, 0.5)
		cut := 2000
		past, future := x[:cut], x[cut+gap:]
		got := Bridge(nil, past, make([]int16, gap), future, rate)
		if len(got) != gap {
			t.Fatalf("%v Hz: %d samples, want %d", f, len(got), gap)
		}
		from := 2 * bridgeLead * rate / 1000
		want := x[cut+from : cut+gap]
		if c := correlation(got[from:], want); !(c >= 0.95) {
			t.Errorf("%v Hz: correlation with the tone %.3f", f, c)
		}
		if r := rms(got[from:]) / rms(want); r < 0.9 || r > 1.1 {
			t.Errorf("%v Hz: level %.2f of the tone's", f, r)
		}
	}
}

// Different audio either side: the bridge starts from the past and ends
// at the future, in pitch and in level.
func TestBridgeJoins(t *testing.T) {
	const rate, gap = 16000, 1920
	lead := bridgeLead * rate / 1000
	plc := Sine(gap, rate, 200, 0.4) // a concealment going on from the past
	got := Bridge(nil, Sine(2000, rate, 200, 0.5), plc, Sine(2000, rate, 300, 0.5), rate)
	if !slices.Equal(got[:lead], plc[:lead]) {
		t.Error("the first milliseconds are not the codec's concealment")
	}
	if f, _ := DominantFrequency(got[2*lead:4*lead], rate, 100, 1000); math.Abs(f-200) > 5 {
		t.Errorf("bridge starts at %.1f Hz, want the past's 200", f)
	}
	if f, _ := DominantFrequency(got[gap-2*lead:], rate, 100, 1000); math.Abs(f-300) > 5 {
		t.Errorf("bridge ends at %.1f Hz, want the future's 300", f)
	}
	got = Bridge(nil, Sine(2000, rate, 200, 0.5), plc, Sine(2000, rate, 200, 0.05), rate)
	if h, e := rms(got[2*lead:4*lead]), rms(got[gap-lead:]); h < 4*e {
		t.Errorf("bridge level %.3f at its start and %.3f at its end: want it to fall to the future's", h, e)
	}
}

// Without enough audio on either side it leaves the concealment as it is.
func TestBridgeFallsBack(t *testing.T) {
	const rate = 48000
	ctx := BridgeContext(rate)
	plc := Sine(5760, rate, 300, 0.3)
	full := Sine(ctx, rate, 200, 0.5)
	for _, tt := range []struct {
		name         string
		past, future []int16
	}{
		{"short past", full[1:], full},
		{"short future", full, full[1:]},
		{"none", nil, nil},
	} {
		dst := []int16{7}
		got := Bridge(dst, tt.past, plc, tt.future, rate)
		if !slices.Equal(got, append([]int16{7}, plc...)) {
			t.Errorf("%s: not the concealment appended", tt.name)
		}
	}
	if got := Bridge([]int16{1, 2}, full, nil, full, rate); !slices.Equal(got, []int16{1, 2}) {
		t.Errorf("empty gap: %v", got)
	}
}
