package filecrypt

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
	"time"
)

// Throughput of the content encryption alone (bench/filecrypt.sh compares
// it with OpenSSL's AES-256-GCM on 64 KiB blocks).
const benchSize = 8 << 20

func BenchmarkStreamSeal(b *testing.B) {
	pt := content(benchSize)
	key := bytes.Repeat([]byte{1}, 32)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		w, _ := NewStreamWriter(key, io.Discard)
		w.Write(pt)
		w.Close()
	}
}

func BenchmarkStreamOpen(b *testing.B) {
	pt := content(benchSize)
	key := bytes.Repeat([]byte{1}, 32)
	var ct bytes.Buffer
	w, _ := NewStreamWriter(key, &ct)
	w.Write(pt)
	w.Close()
	buf := make([]byte, ChunkSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		r, _ := NewStreamReader(key, bytes.NewReader(ct.Bytes()), benchSize)
		for {
			if _, err := r.Read(buf); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkFile is a whole file to two recipient slots and an own device:
// key wrapping, signature, metadata, content and its SHA-256.
func BenchmarkFile(b *testing.B) {
	w := newWorld(b)
	pt := content(benchSize)
	meta := Metadata{Name: "video.mp4", Size: benchSize, SHA256: sha256.Sum256(pt)}
	b.Run("encrypt", func(b *testing.B) {
		u1, _ := w.takeSlot(b, w.bravo)
		u2, _ := w.takeSlot(b, w.bravo2)
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			o, err := NewFile(w.alpha.sender(), meta, []SlotUse{u1, u2}, []OwnDevice{w.alpha2.own()}, w.now)
			if err != nil {
				b.Fatal(err)
			}
			cw, _ := o.ContentWriter(io.Discard)
			cw.Write(pt)
			if err := cw.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decrypt", func(b *testing.B) {
		s := w.send(b, pt, w.bravo)
		sec := s.secrets[w.bravo.name]
		b.SetBytes(benchSize)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := w.receive(s, w.bravo, sec, s.out.Header, s.out.Metadata, s.payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSlot is one slot's life: made by the recipient, opened and
// proved by the sender.
func BenchmarkSlot(b *testing.B) {
	w := newWorld(b)
	b.ReportAllocs()
	for b.Loop() {
		offer, _, err := NewSlot(w.bravo.maker(), "alpha@localhost", []SealTo{w.alpha.sealTo()}, w.now, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := ParseSealedSlot(offer.Sealed)
		slot, err := s.Open(w.alpha.opener(), w.bravo.cert, w.now)
		if err != nil {
			b.Fatal(err)
		}
		if VerifySlotProof(offer.ID, offer.ProofHash, slot.Proof()) != nil {
			b.Fatal("proof")
		}
	}
}
