package ogg

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/testpeer"
)

func stream(t testing.TB, packets [][]byte) []byte {
	var b bytes.Buffer
	w, err := NewWriter(&b, 7, Head{Channels: 1, PreSkip: 312, InputRate: 16000}, "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packets {
		if err := w.WritePacket(p, 960); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(int64(960*len(packets)-400), 312); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRoundTrip(t *testing.T) {
	// Sizes around the lacing edges of RFC 3533 §5: 0, 254, 255 and 510
	// bytes need a terminating lacing value of 0 or below 255.
	packets := [][]byte{{0xf8}, bytes.Repeat([]byte{1}, 254), bytes.Repeat([]byte{2}, 255), bytes.Repeat([]byte{3}, 510), {}, {9, 9}}
	b := stream(t, packets)
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if r.Head != (Head{Channels: 1, PreSkip: 312, InputRate: 16000}) {
		t.Errorf("head %+v", r.Head)
	}
	for i, want := range packets {
		got, err := r.Packet()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("packet %d: %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := r.Packet(); err != io.EOF {
		t.Errorf("after the last packet: %v", err)
	}
	if want := int64(960*len(packets) - 400 + 312); r.Granule != want {
		t.Errorf("end granule %d, want %d", r.Granule, want)
	}
}

// Damaged or foreign input fails with the specific error, never a panic.
func TestBadInput(t *testing.T) {
	good := stream(t, [][]byte{{0xf8, 1, 2}, {0xf8, 3}})
	hdrLen := 27 + 1 + 19 + 27 + 1 + len(tags("test"))
	for name, c := range map[string]struct {
		mutate func([]byte) []byte
		want   error
	}{
		"flipped body byte": {func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrCRC},
		"not ogg":           {func(b []byte) []byte { b[0] = 'X'; return b }, ErrFormat},
		"truncated":         {func(b []byte) []byte { return b[:len(b)-1] }, ErrFormat},
		"missing page":      {func(b []byte) []byte { return append(b[:hdrLen], b[hdrLen+27+1+3:]...) }, ErrFormat},
		"not opus":          {func(b []byte) []byte { return stream2(t, []byte("OpusHeat")) }, ErrNotOpus},
		"empty":             {func(b []byte) []byte { return nil }, io.EOF},
	} {
		t.Run(name, func(t *testing.T) {
			b := c.mutate(append([]byte(nil), good...))
			r, err := NewReader(bytes.NewReader(b))
			for err == nil {
				_, err = r.Packet()
			}
			if !errors.Is(err, c.want) {
				t.Errorf("got %v, want %v", err, c.want)
			}
		})
	}
}

// stream2 is a valid Ogg stream whose first packet is head.
func stream2(t *testing.T, head []byte) []byte {
	var b bytes.Buffer
	w := &Writer{w: &b, serial: 1}
	if err := w.page(flagBOS, 0, append(head, make([]byte, 11)...)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// opusinfo (Debian opus-tools, built on libogg) accepts what Writer
// writes: pages, checksums and headers.
func TestOpusinfoReadsWriter(t *testing.T) {
	info := testpeer.Require(t, "opusinfo")
	// A real Opus packet: TOC 0xf8 is CELT fullband 20 ms, one frame; with
	// no frame bytes it decodes as silence (RFC 6716 §3.2.1).
	packets := make([][]byte, 50)
	for i := range packets {
		packets[i] = []byte{0xf8}
	}
	path := filepath.Join(t.TempDir(), "v.opus")
	if err := os.WriteFile(path, stream(t, packets), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(info, path).CombinedOutput()
	if err != nil {
		t.Fatalf("opusinfo: %v\n%s", err, out)
	}
	if s := string(out); strings.Contains(strings.ToLower(s), "warning") || strings.Contains(strings.ToLower(s), "error") {
		t.Errorf("opusinfo complains:\n%s", s)
	}
}

func FuzzReader(f *testing.F) {
	f.Add(stream(f, [][]byte{{0xf8, 1, 2}, bytes.Repeat([]byte{5}, 300)}))
	f.Add([]byte("OggS\x00\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := 0; i < len(b)+10; i++ {
			if _, err := r.Packet(); err != nil {
				return
			}
		}
		t.Fatal("more packets than bytes")
	})
}
