// Package dsp holds the signal processing a call's audio path needs around
// the codecs: a sample-rate converter, the bridging of a lost packet
// between the audio either side of it, and a tone detector (Goertzel) that
// tests use to check the pitch of recorded audio.
package dsp

import (
	"fmt"
	"math"
)

// Resampler converts a stream of 16-bit mono PCM from one rate to another
// with a windowed-sinc (Kaiser) low-pass interpolator evaluated on a
// polyphase table: for the rational ratio up/down, output sample n lies at
// input position n·down/up, and each of the up phases has its own set of
// filter taps. The pass band ends at 0.9 of the lower Nyquist frequency.
//
// It is stateful (it keeps the tail of the input) and not safe for
// concurrent use.
type Resampler struct {
	up, down int
	half     int         // taps on each side of the output position
	taps     [][]float32 // [phase][2*half]
	buf      []float32   // pending input; buf[0] is input sample base
	base     int64       // absolute index of buf[0]
	n        int64       // next output sample
}

const (
	maxPhases = 4096
	// zeroCrossings of the sinc on each side at the cutoff frequency:
	// longer filters give a steeper transition band.
	zeroCrossings = 16
	kaiserBeta    = 8.0 // about 80 dB of stop-band attenuation
	passFraction  = 0.9
)

// NewResampler returns a converter from rate from to rate to.
func NewResampler(from, to int) (*Resampler, error) {
	if from < 1000 || from > 384000 || to < 1000 || to > 384000 {
		return nil, fmt.Errorf("dsp: resample %d Hz -> %d Hz: rates must be 1000..384000", from, to)
	}
	g := gcd(from, to)
	up, down := to/g, from/g
	if up > maxPhases {
		return nil, fmt.Errorf("dsp: resample %d Hz -> %d Hz: ratio %d/%d needs too many filter phases", from, to, up, down)
	}
	r := &Resampler{up: up, down: down}
	if up == down {
		return r, nil
	}
	// Cutoff in cycles per input sample (0.5 is the input Nyquist).
	fc := 0.5 * passFraction
	if down > up {
		fc *= float64(up) / float64(down)
	}
	r.half = int(math.Ceil(zeroCrossings / (2 * fc)))
	r.taps = make([][]float32, up)
	i0 := besselI0(kaiserBeta)
	for p := range up {
		frac := float64(p) / float64(up) // output lies frac past input sample k
		t := make([]float32, 2*r.half)
		var sum float64
		for j := range t {
			// Tap j multiplies input k-half+1+j; its distance from the output.
			d := float64(j-r.half+1) - frac
			x := d / float64(r.half)
			if x <= -1 || x >= 1 {
				continue
			}
			w := besselI0(kaiserBeta*math.Sqrt(1-x*x)) / i0
			v := 2 * fc * sinc(2*fc*d) * w
			t[j] = float32(v)
			sum += v
		}
		for j := range t { // unity gain at DC for every phase
			t[j] = float32(float64(t[j]) / sum)
		}
		r.taps[p] = t
	}
	// History before the first sample is silence.
	r.buf = make([]float32, r.half)
	r.base = -int64(r.half)
	return r, nil
}

// Process appends to dst the output that the input so far determines. The
// filter's look-ahead holds back about half its length of input until more
// arrives or Flush is called.
func (r *Resampler) Process(dst []int16, in []int16) []int16 {
	if r.up == r.down {
		return append(dst, in...)
	}
	for _, s := range in {
		r.buf = append(r.buf, float32(s))
	}
	end := r.base + int64(len(r.buf))
	for {
		pos := r.n * int64(r.down)
		k := pos / int64(r.up)
		if k+int64(r.half) >= end { // need inputs up to k+half
			break
		}
		t := r.taps[pos%int64(r.up)]
		x := r.buf[k-int64(r.half)+1-r.base:]
		var acc float32
		for j, c := range t {
			acc += c * x[j]
		}
		dst = append(dst, clamp(acc))
		r.n++
	}
	// Drop input no future output needs.
	k := r.n * int64(r.down) / int64(r.up)
	if drop := k - int64(r.half) + 1 - r.base; drop > 0 {
		r.buf = append(r.buf[:0], r.buf[drop:]...)
		r.base += drop
	}
	return dst
}

// Flush feeds silence to release the held-back tail and returns the
// output up to the end of the input given so far. The Resampler should
// not be used after Flush.
func (r *Resampler) Flush(dst []int16) []int16 {
	if r.up == r.down {
		return dst
	}
	end := r.base + int64(len(r.buf)) // inputs given so far
	want := (end*int64(r.up) + int64(r.down) - 1) / int64(r.down)
	dst = r.Process(dst, make([]int16, r.half))
	if over := r.n - want; over > 0 {
		dst = dst[:len(dst)-int(over)]
	}
	return dst
}

// Resample converts a whole signal.
func Resample(in []int16, from, to int) ([]int16, error) {
	r, err := NewResampler(from, to)
	if err != nil {
		return nil, err
	}
	out := r.Process(make([]int16, 0, len(in)*to/from+1), in)
	return r.Flush(out), nil
}

func clamp(v float32) int16 {
	switch {
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	case v >= 0:
		return int16(v + 0.5)
	}
	return int16(v - 0.5)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by
// its power series (converges quickly for the arguments a Kaiser window
// uses).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
