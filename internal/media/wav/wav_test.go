package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	a := &Audio{SampleRate: 8000, Samples: []int16{0, 1, -1, 32767, -32768, 1234}}
	var buf bytes.Buffer
	if err := Encode(&buf, a); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 44+12 {
		t.Fatalf("file is %d bytes, want 56", buf.Len())
	}
	b, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if b.SampleRate != 8000 || !equal(a.Samples, b.Samples) {
		t.Fatalf("got %d Hz %v", b.SampleRate, b.Samples)
	}
}

func TestWriter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rec.wav")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWriter(f, 16000)
	if err != nil {
		t.Fatal(err)
	}
	want := []int16{}
	for i := range 5 {
		s := []int16{int16(i), int16(-i), 7}
		want = append(want, s...)
		if err := w.Write(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data, _ := os.ReadFile(p)
	got, err := Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got.SampleRate != 16000 || !equal(got.Samples, want) {
		t.Fatalf("got %d Hz %v", got.SampleRate, got.Samples)
	}
}

// file builds a WAVE file with the given fmt fields and data.
func file(tag, channels uint16, rate uint32, bits uint16, data []byte, extra ...[]byte) []byte {
	var b []byte
	b = append(b, "RIFF\x00\x00\x00\x00WAVE"...)
	for _, e := range extra {
		b = append(b, e...)
	}
	b = append(b, "fmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, tag)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, channels*bits/8)
	b = binary.LittleEndian.AppendUint16(b, bits)
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func TestDecodeFormats(t *testing.T) {
	f32 := func(v ...float32) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	tests := []struct {
		name string
		in   []byte
		rate int
		want []int16
	}{
		{"16-bit stereo averages", file(1, 2, 44100, 16, []byte{0x10, 0x00, 0x30, 0x00, 0xff, 0xff, 0x01, 0x00}), 44100, []int16{0x20, 0}},
		{"8-bit unsigned", file(1, 1, 8000, 8, []byte{128, 255, 0}), 8000, []int16{0, 32512, -32768}},
		{"24-bit", file(1, 1, 48000, 24, []byte{0x00, 0x00, 0x80, 0x00, 0x01, 0x00}), 48000, []int16{-32768, 1}},
		{"32-bit float", file(3, 1, 22050, 32, f32(0.5, -1, 2)), 22050, []int16{16384, -32768, 32767}},
		{"unknown chunk skipped", file(1, 1, 8000, 16, []byte{1, 0}, []byte("LIST\x03\x00\x00\x00abc\x00")), 8000, []int16{1}},
		{"partial frame dropped", file(1, 2, 8000, 16, []byte{1, 0, 1, 0, 9}), 8000, []int16{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Decode(bytes.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if a.SampleRate != tt.rate || !equal(a.Samples, tt.want) {
				t.Fatalf("got %d Hz %v, want %d Hz %v", a.SampleRate, a.Samples, tt.rate, tt.want)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := file(1, 1, 8000, 16, []byte{1, 0, 2, 0})
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"not RIFF", []byte("RIFX\x00\x00\x00\x00WAVE"), ErrFormat},
		{"not WAVE", []byte("RIFF\x00\x00\x00\x00AVI "), ErrFormat},
		{"no chunks", []byte("RIFF\x04\x00\x00\x00WAVE"), ErrFormat},
		{"truncated data", good[:len(good)-1], ErrTruncated},
		{"truncated chunk header", good[:40], ErrTruncated},
		{"compressed", file(2, 1, 8000, 4, nil), ErrFormat},
		{"zero channels", file(1, 0, 8000, 16, nil), ErrFormat},
		{"12-bit", file(1, 1, 8000, 12, nil), ErrFormat},
		{"rate 0", file(1, 1, 0, 16, nil), ErrFormat},
		{"data before fmt", []byte("RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00"), ErrFormat},
		{"huge fmt", []byte("RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\xff\x7f"), ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			t.Log(err)
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(file(1, 1, 8000, 16, []byte{1, 0, 2, 0}))
	f.Add(file(1, 2, 44100, 24, []byte{1, 2, 3, 4, 5, 6}))
	f.Add(file(3, 1, 48000, 32, []byte{0, 0, 0x80, 0x3f}))
	f.Add(file(3, 3, 48000, 64, make([]byte, 24), []byte("junk\x01\x00\x00\x00x\x00")))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Decode(bytes.NewReader(in))
		if err != nil {
			return
		}
		if len(a.Samples) > len(in) {
			t.Fatalf("%d samples from %d bytes", len(a.Samples), len(in))
		}
		var buf bytes.Buffer
		if err := Encode(&buf, a); err != nil {
			t.Fatal(err)
		}
		b, err := Decode(&buf)
		if err != nil || !equal(a.Samples, b.Samples) || a.SampleRate != b.SampleRate {
			t.Fatalf("re-encode changed the audio: %v", err)
		}
	})
}

func equal(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
