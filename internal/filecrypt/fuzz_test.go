package filecrypt

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// Every decoder of bytes from the network or the store is fuzzed: it must
// return an error wrapping one of the package's sentinels, or a value that
// encodes back to the same bytes; never panic.

func checkErr(t *testing.T, err error) {
	t.Helper()
	for _, s := range []error{ErrMalformed, ErrVersion} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error without a sentinel: %v", err)
}

// fuzzSeeds makes one valid value of each format for the seed corpora.
type fuzzSeeds struct {
	slot, sealed, header, meta, secret []byte
}

func newFuzzSeeds(f *testing.F) fuzzSeeds {
	w := newWorld(f)
	offer, secret, err := NewSlot(w.bravo.maker(), "alpha@localhost", []SealTo{w.alpha.sealTo()}, w.now, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	sealed, _ := ParseSealedSlot(offer.Sealed)
	slot, err := sealed.Open(w.alpha.opener(), w.bravo.cert, w.now)
	if err != nil {
		f.Fatal(err)
	}
	sb, _ := slot.Public.MarshalBinary()
	meta := Metadata{Name: "voice.ogg", Size: 5, Type: "audio/ogg", Duration: 3 * time.Second}
	o, err := NewFile(w.alpha.sender(), meta, []SlotUse{{slot, offer.Nonce2}}, []OwnDevice{w.alpha2.own()}, w.now)
	if err != nil {
		f.Fatal(err)
	}
	mb, _ := meta.MarshalBinary()
	secb, _ := secret.MarshalBinary()
	return fuzzSeeds{slot: sb, sealed: offer.Sealed, header: o.Header, meta: mb, secret: secb}
}

// TestShortInput feeds every decoder each prefix of a valid encoding
// (a short read in the fuzzer's blind spot once panicked).
func TestShortInput(t *testing.T) {
	w := newWorld(t)
	offer, secret, err := NewSlot(w.bravo.maker(), "alpha@localhost", []SealTo{w.alpha.sealTo()}, w.now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := w.send(t, []byte("abc"), w.bravo)
	sec, _ := secret.MarshalBinary()
	meta, _ := s.meta.MarshalBinary()
	sealed, _ := ParseSealedSlot(offer.Sealed)
	slot, _ := sealed.Open(w.alpha.opener(), w.bravo.cert, w.now)
	pub, _ := slot.Public.MarshalBinary()
	for _, c := range []struct {
		name  string
		b     []byte
		parse func([]byte) error
	}{
		{"slot", pub, func(b []byte) error { _, err := ParseSlotPublic(b); return err }},
		{"sealed slot", offer.Sealed, func(b []byte) error { _, err := ParseSealedSlot(b); return err }},
		{"slot secret", sec, func(b []byte) error { _, err := ParseSlotSecret(b); return err }},
		{"header", s.out.Header, func(b []byte) error { _, err := ParseHeader(b); return err }},
		{"metadata", meta, func(b []byte) error { _, err := ParseMetadata(b); return err }},
	} {
		for n := range len(c.b) {
			if err := c.parse(c.b[:n]); err == nil {
				t.Fatalf("%s: %d-byte prefix parsed", c.name, n)
			} else {
				checkErr(t, err)
			}
		}
		if err := c.parse(c.b); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
}

func FuzzParseSlotPublic(f *testing.F) {
	s := newFuzzSeeds(f)
	f.Add(s.slot)
	f.Add(s.slot[:100])
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseSlotPublic(b)
		if err != nil {
			checkErr(t, err)
			return
		}
		again, _ := p.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatal("slot does not encode back to its bytes")
		}
	})
}

func FuzzParseSealedSlot(f *testing.F) {
	s := newFuzzSeeds(f)
	f.Add(s.sealed)
	f.Add(s.sealed[:40])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := ParseSealedSlot(b); err != nil {
			checkErr(t, err)
		}
	})
}

func FuzzParseSlotSecret(f *testing.F) {
	s := newFuzzSeeds(f)
	f.Add(s.secret)
	f.Fuzz(func(t *testing.T, b []byte) {
		sec, err := ParseSlotSecret(b)
		if err != nil {
			checkErr(t, err)
			return
		}
		again, _ := sec.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatal("secret does not encode back to its bytes")
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	s := newFuzzSeeds(f)
	f.Add(s.header)
	f.Add(s.header[:80])
	f.Add([]byte("PXFH\x02"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			checkErr(t, err)
			return
		}
		again, _ := h.MarshalBinary()
		if !bytes.Equal(again, b) {
			t.Fatal("header does not encode back to its bytes")
		}
	})
}

func FuzzParseMetadata(f *testing.F) {
	s := newFuzzSeeds(f)
	f.Add(s.meta)
	f.Add(make([]byte, 256))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b)
		if err != nil {
			checkErr(t, err)
			return
		}
		again, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("metadata does not encode back to its bytes: %v", err)
		}
	})
}

// FuzzStreamReader feeds the chunk decoder arbitrary ciphertext, with and
// without a declared size. Whatever opens must be what the writer makes
// of the plaintext it gave, and every failure names a stream sentinel.
func FuzzStreamReader(f *testing.F) {
	key := bytes.Repeat([]byte{0x42}, 32)
	seal := func(pt []byte) []byte {
		var buf bytes.Buffer
		w, _ := NewStreamWriter(key, &buf)
		w.Write(pt)
		w.Close()
		return buf.Bytes()
	}
	for _, n := range []int{0, 1, 100, ChunkSize, ChunkSize + 1} {
		ct := seal(bytes.Repeat([]byte{byte(n)}, n))
		f.Add(ct, int64(n))
		f.Add(ct, int64(-1))
		f.Add(ct[:len(ct)/2], int64(n))
	}
	f.Fuzz(func(t *testing.T, ct []byte, size int64) {
		if size < -1 {
			size = -1
		}
		r, err := NewStreamReader(key, bytes.NewReader(ct), size)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := io.ReadAll(r)
		if err != nil {
			for _, s := range []error{ErrChunkAuth, ErrReordered, ErrTruncated, ErrTrailingData, ErrMalformed} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		if !bytes.Equal(seal(pt), ct) {
			t.Fatal("opened ciphertext is not the writer's")
		}
		if size >= 0 && int64(len(pt)) != size {
			t.Fatalf("opened %d bytes, declared %d", len(pt), size)
		}
	})
}
