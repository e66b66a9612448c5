package client_test

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/wav"
	"github.com/phonex/phonex/internal/testpeer"
)

// A tone survives Ogg Opus at the call budget at its frequency and length.
func TestVoiceRoundTrip(t *testing.T) {
	testpeer.Require(t, "libopus")
	for _, rate := range []int{8000, 16000, 44100, 48000} {
		src := filepath.Join(t.TempDir(), "tone.wav")
		f, err := os.Create(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := wav.Encode(f, &wav.Audio{SampleRate: rate, Samples: dsp.Sine(rate*3/2, rate, 440, 0.3)}); err != nil {
			t.Fatal(err)
		}
		f.Close()
		var ogg bytes.Buffer
		dur, err := client.EncodeVoice(src, &ogg)
		if err != nil {
			t.Fatal(err)
		}
		if dur != 1500*time.Millisecond {
			t.Errorf("%d Hz: duration %v", rate, dur)
		}
		// 16 kbit/s for 1.5 s plus the pages' overhead.
		if ogg.Len() > 6000 || ogg.Len() < 2000 {
			t.Errorf("%d Hz: %d bytes of Ogg Opus for 1.5 s at 16 kbit/s (3000 bytes of audio and 75 pages)", rate, ogg.Len())
		}
		oggBytes := ogg.Bytes()
		a, err := client.DecodeVoice(&ogg)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Duration(); math.Abs(got-1.5) > 0.001 {
			t.Errorf("%d Hz: decoded %.4f s, want 1.5", rate, got)
		}
		freq, purity := dsp.DominantFrequency(a.Samples[1600:], a.SampleRate, 100, 4000)
		if math.Abs(freq-440) > 10 || purity < 0.5 {
			t.Errorf("%d Hz: tone at %.1f Hz (purity %.2f), want 440", rate, freq, purity)
		}
		if rate == 16000 {
			opusdecReads(t, oggBytes)
		}
	}
}

// opusdec (Debian opus-tools, the reference decoder) plays what
// EncodeVoice writes: the tone at 440 Hz, 1.5 s after pre-skip and end
// trimming.
func opusdecReads(t *testing.T, ogg []byte) {
	dec := testpeer.Require(t, "opusdec")
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "v.ogg"), filepath.Join(dir, "v.wav")
	if err := os.WriteFile(src, ogg, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(dec, src, dst).CombinedOutput(); err != nil {
		t.Fatalf("opusdec: %v\n%s", err, out)
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := wav.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.Duration(); math.Abs(got-1.5) > 0.001 {
		t.Errorf("opusdec: %.4f s, want 1.5", got)
	}
	if freq, _ := dsp.DominantFrequency(a.Samples[1600:], a.SampleRate, 100, 4000); math.Abs(freq-440) > 10 {
		t.Errorf("opusdec: tone at %.1f Hz, want 440", freq)
	}
}
