//go:build cgo

package codec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/testpeer"
)

// requireOpus skips (fails in CI) a test that needs libopus when it cannot
// be loaded.
func requireOpus(t testing.TB) {
	t.Helper()
	if r := OpusUnavailableReason(); r != "" {
		testpeer.Missing(t, "libopus", r)
	}
}

// TestOpusLibraryLoading checks the run-time loading of libopus: a library
// that does not exist makes Opus unavailable with a reason, and loading the
// real one again gives a working codec.
func TestOpusLibraryLoading(t *testing.T) {
	t.Cleanup(func() { LoadOpusLibrary(DefaultOpusLibrary) })

	err := LoadOpusLibrary("libopus-phonex-missing.so.9")
	if !errors.Is(err, ErrOpusUnavailable) || !strings.Contains(err.Error(), "libopus-phonex-missing.so.9") {
		t.Fatalf("missing library: %v, want ErrOpusUnavailable naming it", err)
	}
	if r := OpusUnavailableReason(); !strings.Contains(r, "libopus-phonex-missing.so.9") {
		t.Fatalf("reason %q", r)
	}
	if _, err := NewOpus(OpusConfig{}); !errors.Is(err, ErrOpusUnavailable) {
		t.Fatalf("NewOpus without libopus: %v", err)
	}
	// A library without the Opus functions is refused too.
	if err := LoadOpusLibrary("libc.so.6"); !errors.Is(err, ErrOpusUnavailable) || !strings.Contains(err.Error(), "opus_encoder_create") {
		t.Fatalf("libc as libopus: %v", err)
	}

	if err := LoadOpusLibrary(DefaultOpusLibrary); err != nil {
		testpeer.Missing(t, "libopus", err.Error())
	}
	if r := OpusUnavailableReason(); r != "" {
		t.Fatalf("reason %q after loading libopus", r)
	}
	if v := OpusVersion(); !strings.HasPrefix(v, "libopus") {
		t.Fatalf("version %q", v)
	}
	o, err := NewOpus(OpusConfig{Frame: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	pcm := dsp.Sine(o.FrameSamples(), o.SampleRate(), 440, 0.5)
	var out []int16
	for range 10 { // the decoder needs a few frames to settle
		pkt, err := o.Encode(nil, pcm)
		if err != nil || len(pkt) < 2 {
			t.Fatalf("encode: %d bytes, %v", len(pkt), err)
		}
		if out, err = o.Decode(out[:0], pkt); err != nil || len(out) != o.FrameSamples() {
			t.Fatalf("decode: %d samples, %v", len(out), err)
		}
	}
	if f, _ := dsp.DominantFrequency(out, o.SampleRate(), 200, 2000); f < 400 || f > 480 {
		t.Fatalf("decoded %.1f Hz, want 440", f)
	}
}
