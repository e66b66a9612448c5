package e2e

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/wav"
)

// A voice message of a 440 Hz tone goes from alpha to bravo as Ogg Opus;
// files shows it as a voice message with its duration, get writes the
// .ogg, and get --wav on another device the tone at 440 Hz.
func TestVoice(t *testing.T) {
	requirePeer(t, "libopus")
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.device("bravo", "b2", false)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	for _, d := range []string{"bravo/b1", "bravo/b2"} {
		l := c.listen(d)
		waitFor(t, d+" ready", 20*time.Second, func() bool { return l.first("file_slots").Text != "" })
		l.stop()
	}

	// 2 s at 44.1 kHz: the sender resamples to the codec's rate.
	src := filepath.Join(c.tmp, "tone.wav")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := wav.Encode(f, &wav.Audio{SampleRate: 44100, Samples: dsp.Sine(88200, 44100, 440, 0.3)}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Without libopus the sender says so and sends nothing.
	r := run(t, []string{"PHONEX_LIBOPUS=libopus-missing.so.0"}, "phonex", "voice", "bravo@example.org", "--wav", src,
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	if r.code == 0 || !strings.Contains(r.err, "Opus unavailable") {
		t.Fatalf("voice without libopus: exit %d: %s", r.code, r.err)
	}

	_, res := sendFileLines(t, c.mustPx("alpha/a1", "voice", "bravo@example.org", "--wav", src, "--json"))
	if res.ID == "" || len(res.Devices) != 2 {
		t.Fatalf("voice result: %+v", res)
	}
	var fs []struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Name    string `json:"name"`
		Size    int64  `json:"size"`
		VoiceMS int64  `json:"voice_ms"`
	}
	if err := json.Unmarshal([]byte(c.mustPx("bravo/b1", "files", "--json")), &fs); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, e := range fs {
		if e.ID == res.ID {
			found = true
			if e.Type != "audio/ogg" || e.VoiceMS != 2000 || !strings.HasSuffix(e.Name, ".ogg") {
				t.Fatalf("files shows %+v, want an audio/ogg voice message of 2000 ms", e)
			}
			// Opus at 16 kbit/s: 4000 bytes of audio for 2 s, plus pages.
			if e.Size < 3000 || e.Size > 8000 {
				t.Errorf("voice message of %d bytes for 2 s at 16 kbit/s", e.Size)
			}
		}
	}
	if !found {
		t.Fatalf("files on b1 does not list %s: %+v", res.ID, fs)
	}
	if out := c.mustPx("bravo/b1", "files"); !strings.Contains(out, "voice message 2.0 s") {
		t.Errorf("files does not show the voice message:\n%s", out)
	}

	// b1 gets the Ogg Opus file as sent.
	ogg := filepath.Join(c.tmp, "got.ogg")
	c.mustPx("bravo/b1", "get", res.ID, "-o", ogg, "--json")
	b, err := os.ReadFile(ogg)
	if err != nil || len(b) < 4 || string(b[:4]) != "OggS" {
		t.Fatalf("get wrote no Ogg file (%v)", err)
	}

	// b2 gets it decoded to WAV: the tone, 2 s long.
	out := filepath.Join(c.tmp, "got.wav")
	c.mustPx("bravo/b2", "get", res.ID, "-o", out, "--wav", "--json")
	wf, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	a, err := wav.Decode(wf)
	wf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if d := a.Duration(); math.Abs(d-2) > 0.001 {
		t.Errorf("decoded voice message of %.4f s, want 2", d)
	}
	freq, purity := dsp.DominantFrequency(a.Samples[a.SampleRate/10:], a.SampleRate, 100, 4000)
	if math.Abs(freq-440) > 5 || purity < 0.5 {
		t.Errorf("decoded tone at %.1f Hz (purity %.2f), want 440", freq, purity)
	}
	if ents, _ := filepath.Glob(filepath.Join(c.tmp, ".voice-*")); len(ents) != 0 {
		t.Errorf("get --wav left temporary files: %v", ents)
	}
}
