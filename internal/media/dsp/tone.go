package dsp

import "math"

// Goertzel returns the power of the frequency f (Hz) in pcm sampled at
// rate, after a Hann window, with samples scaled to ±1: a sine of
// amplitude A at f gives (A·len(pcm)/4)².
func Goertzel(pcm []int16, rate int, f float64) float64 {
	n := len(pcm)
	if n == 0 || rate <= 0 {
		return 0
	}
	w := 2 * math.Pi * f / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for i, v := range pcm {
		win := 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n))
		s0 := float64(v)/32768*win + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	return s1*s1 + s2*s2 - coeff*s1*s2
}

// DominantFrequency returns the frequency between lo and hi Hz with the
// most power in pcm, to about 0.1 Hz, and that power relative to the
// signal's total energy (near 1 for a pure tone). It scans in 5 Hz steps
// and then refines around the peak.
func DominantFrequency(pcm []int16, rate int, lo, hi float64) (freq, purity float64) {
	if len(pcm) == 0 || rate <= 0 || hi <= lo {
		return 0, 0
	}
	best, bestP := lo, -1.0
	for f := lo; f <= hi; f += 5 {
		if p := Goertzel(pcm, rate, f); p > bestP {
			best, bestP = f, p
		}
	}
	for _, step := range []float64{1, 0.1} {
		c := best
		for f := c - 10*step; f <= c+10*step; f += step {
			if p := Goertzel(pcm, rate, f); p > bestP {
				best, bestP = f, p
			}
		}
	}
	// A Hann-windowed sine of amplitude A gives a Goertzel power of
	// (A·N/4)², and its energy is A²·N/2: the ratio of the two is N/8 for
	// a pure tone.
	var energy float64
	for _, v := range pcm {
		x := float64(v) / 32768
		energy += x * x
	}
	if energy == 0 {
		return best, 0
	}
	n := float64(len(pcm))
	return best, bestP / (energy * n / 8)
}

// Sine returns n samples of a sine at f Hz and the given amplitude
// (0..1 of full scale).
func Sine(n, rate int, f, amplitude float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amplitude * 32767 * math.Sin(2*math.Pi*f*float64(i)/float64(rate))))
	}
	return out
}
