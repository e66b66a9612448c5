package filecrypt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	mrand "math/rand/v2"
	"testing"
	"time"
)

func content(n int) []byte {
	b := make([]byte, n)
	r := mrand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

type sent struct {
	out     *Outgoing
	payload []byte
	secrets map[string]*SlotSecret
	meta    Metadata
	plain   []byte
}

func (w *world) send(t testing.TB, plain []byte, to ...*device) *sent {
	t.Helper()
	s := &sent{plain: plain, secrets: map[string]*SlotSecret{}}
	var uses []SlotUse
	for _, d := range to {
		u, sec := w.takeSlot(t, d)
		uses = append(uses, u)
		s.secrets[d.name] = sec
	}
	size, sum, err := HashContent(bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	s.meta = Metadata{Name: "report.pdf", Size: size, Type: "application/pdf", SHA256: sum}
	s.out, err = NewFile(w.alpha.sender(), s.meta, uses, []OwnDevice{w.alpha2.own()}, w.now.Add(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	cw, err := s.out.ContentWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes cross chunk boundaries.
	for p := plain; len(p) > 0; {
		n := min(len(p), 7777)
		if _, err := cw.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	s.payload = buf.Bytes()
	return s
}

// receive runs the recipient side with the slot secret of rcpt, or the
// message key of an own device when secret is nil.
func (w *world) receive(s *sent, rcpt *device, secret *SlotSecret, header, meta, payload []byte) ([]byte, error) {
	h, err := ParseHeader(header)
	if err != nil {
		return nil, err
	}
	if err := h.Verify(w.alpha.cert); err != nil {
		return nil, err
	}
	var fk *FileKey
	if secret != nil {
		fk, err = h.UnwrapSlot(secret)
	} else {
		fk, err = h.UnwrapOwn(rcpt.name, rcpt.kem)
	}
	if err != nil {
		return nil, err
	}
	m, err := fk.OpenMetadata(meta)
	if err != nil {
		return nil, err
	}
	if m.Name != s.meta.Name || m.Type != s.meta.Type || m.Size != s.meta.Size {
		return nil, errors.New("metadata differs")
	}
	r, err := fk.ContentReader(bytes.NewReader(payload), m)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestRoundTrip(t *testing.T) {
	w := newWorld(t)
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 5, 5<<20 + 123} {
		s := w.send(t, content(n), w.bravo, w.bravo2)
		if int64(len(s.payload)) != EncryptedSize(int64(n)) {
			t.Fatalf("size %d: payload %d bytes, want %d", n, len(s.payload), EncryptedSize(int64(n)))
		}
		for _, r := range []struct {
			dev    *device
			secret *SlotSecret
		}{{w.bravo, s.secrets[w.bravo.name]}, {w.bravo2, s.secrets[w.bravo2.name]}, {w.alpha2, nil}} {
			got, err := w.receive(s, r.dev, r.secret, s.out.Header, s.out.Metadata, s.payload)
			if err != nil {
				t.Fatalf("size %d, %s: %v", n, r.dev.name, err)
			}
			if !bytes.Equal(got, s.plain) {
				t.Fatalf("size %d, %s: content differs", n, r.dev.name)
			}
		}
	}
}

func TestContentTampering(t *testing.T) {
	w := newWorld(t)
	s := w.send(t, content(3*ChunkSize+1000), w.bravo)
	p := s.payload
	chunk := func(i int) []byte {
		end := min((i+1)*encChunkSize, len(p))
		return p[i*encChunkSize : end]
	}
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	flipped := bytes.Clone(p)
	flipped[encChunkSize+100] ^= 1
	for _, c := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"flip a byte in a chunk", flipped, ErrChunkAuth},
		{"drop the last chunk", p[:3*encChunkSize], ErrTruncated},
		{"swap two chunks", cat(chunk(1), chunk(0), chunk(2), chunk(3)), ErrReordered},
		{"truncate mid-chunk", p[:2*encChunkSize+500], ErrTruncated},
		{"truncate in the final chunk", p[:len(p)-1], ErrTruncated},
		{"data after the final chunk", cat(p, []byte("x")), ErrTrailingData},
		{"final chunk repeated", cat(p, chunk(3)), ErrTrailingData},
		{"empty", nil, ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.receive(s, w.bravo, s.secrets[w.bravo.name], s.out.Header, s.out.Metadata, c.payload)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestStreamWithoutSize checks the STREAM construction alone, as age uses
// it: without a declared size, the final-chunk flag still catches cuts.
func TestStreamWithoutSize(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	var buf bytes.Buffer
	sw, _ := NewStreamWriter(key, &buf)
	sw.Write(content(3 * ChunkSize))
	sw.Close()
	p := buf.Bytes()
	flipped := bytes.Clone(p)
	flipped[5] ^= 0x80
	for _, c := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"whole", p, nil},
		{"drop the last chunk", p[:2*encChunkSize], ErrTruncated},
		{"data after the final chunk", append(bytes.Clone(p), p[:encChunkSize]...), ErrTrailingData},
		{"swap", append(append(bytes.Clone(p[encChunkSize:2*encChunkSize]), p[:encChunkSize]...), p[2*encChunkSize:]...), ErrReordered},
		{"flip", flipped, ErrChunkAuth},
		{"tiny", p[:10], ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, _ := NewStreamReader(key, bytes.NewReader(c.payload), -1)
			got, err := io.ReadAll(r)
			if c.want == nil {
				if err != nil || !bytes.Equal(got, content(3*ChunkSize)) {
					t.Fatalf("round trip: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

func TestHeaderAndKeys(t *testing.T) {
	w := newWorld(t)
	s := w.send(t, content(1000), w.bravo)
	secret := s.secrets[w.bravo.name]
	mallory := newDevice(t, "alpha@localhost/laptop", false) // same name, other key

	t.Run("wrong sender signature", func(t *testing.T) {
		h, err := ParseHeader(s.out.Header)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Verify(mallory.cert); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
		if _, err := h.UnwrapSlot(secret); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("unverified header unwrapped: %v", err)
		}
	})
	t.Run("altered header", func(t *testing.T) {
		b := bytes.Clone(s.out.Header)
		b[len(b)-200] ^= 1 // inside the wrapped keys or the signature
		_, err := w.receive(s, w.bravo, secret, b, s.out.Metadata, s.payload)
		if !errors.Is(err, ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("forged by another sender", func(t *testing.T) {
		// mallory signs its own header with a key alpha never had.
		u, _ := w.takeSlot(t, w.bravo)
		o, err := NewFile(mallory.sender(), s.meta, []SlotUse{u}, nil, w.now)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(o.Header)
		if err := h.Verify(w.alpha.cert); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("altered metadata", func(t *testing.T) {
		m := bytes.Clone(s.out.Metadata)
		m[3] ^= 1
		_, err := w.receive(s, w.bravo, secret, s.out.Header, m, s.payload)
		if !errors.Is(err, ErrMetadata) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong slot", func(t *testing.T) {
		_, other := w.takeSlot(t, w.bravo)
		_, err := w.receive(s, w.bravo, other, s.out.Header, s.out.Metadata, s.payload)
		if !errors.Is(err, ErrWrongSlot) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not for this device", func(t *testing.T) {
		tablet := newDevice(t, "alpha@localhost/tablet", false)
		_, err := w.receive(s, tablet, nil, s.out.Header, s.out.Metadata, s.payload)
		if !errors.Is(err, ErrNotForMe) {
			t.Fatalf("got %v", err)
		}
		// bravo's desk has a slot wrap, not an own-device wrap.
		_, err = w.receive(s, w.bravo2, nil, s.out.Header, s.out.Metadata, s.payload)
		if !errors.Is(err, ErrSlotBinding) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("replayed slot", func(t *testing.T) {
		if _, err := w.receive(s, w.bravo, secret, s.out.Header, s.out.Metadata, s.payload); err != nil {
			t.Fatal(err)
		}
		stored, err := secret.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		secret.Destroy()
		_, err = w.receive(s, w.bravo, secret, s.out.Header, s.out.Metadata, s.payload)
		if !errors.Is(err, ErrSlotDestroyed) {
			t.Fatalf("got %v", err)
		}
		if _, err := secret.MarshalBinary(); !errors.Is(err, ErrSlotDestroyed) {
			t.Fatalf("destroyed secret marshalled: %v", err)
		}
		// The stored copy parses back to the same secret until deleted.
		again, err := ParseSlotSecret(stored)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.receive(s, w.bravo, again, s.out.Header, s.out.Metadata, s.payload); err != nil {
			t.Fatal(err)
		}
	})
}

func TestSlotHandout(t *testing.T) {
	w := newWorld(t)
	offer, secret, err := NewSlot(w.bravo.maker(), "alpha@localhost", []SealTo{w.alpha.sealTo()}, w.now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ParseSealedSlot(offer.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	carol := newDevice(t, "carol@localhost/phone", false)
	t.Run("sealed for others", func(t *testing.T) {
		if _, err := sealed.Open(carol.opener(), w.bravo.cert, w.now); !errors.Is(err, ErrSealed) {
			t.Fatalf("got %v", err)
		}
		// alpha2 is alpha's, but the slot was not sealed to it.
		if _, err := sealed.Open(w.alpha2.opener(), w.bravo.cert, w.now); !errors.Is(err, ErrSealed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("expired", func(t *testing.T) {
		if _, err := sealed.Open(w.alpha.opener(), w.bravo.cert, w.now.Add(time.Hour)); !errors.Is(err, ErrSlotExpired) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong maker certificate", func(t *testing.T) {
		if _, err := sealed.Open(w.alpha.opener(), w.bravo2.cert, w.now); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("got %v", err)
		}
	})
	slot, err := sealed.Open(w.alpha.opener(), w.bravo.cert, w.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("proof", func(t *testing.T) {
		if err := VerifySlotProof(offer.ID, offer.ProofHash, slot.Proof()); err != nil {
			t.Fatal(err)
		}
		bad := slot.Proof()
		bad[0] ^= 1
		if err := VerifySlotProof(offer.ID, offer.ProofHash, bad); !errors.Is(err, ErrSlotProof) {
			t.Fatalf("got %v", err)
		}
		var other SlotID
		other[0] = 1
		if err := VerifySlotProof(other, offer.ProofHash, slot.Proof()); !errors.Is(err, ErrSlotProof) {
			t.Fatalf("proof accepted for another slot: %v", err)
		}
	})
	meta := Metadata{Name: "a", Size: 1, SHA256: sha256.Sum256([]byte("x"))}
	t.Run("expired at the sender", func(t *testing.T) {
		_, err := NewFile(w.alpha.sender(), meta, []SlotUse{{slot, offer.Nonce2}}, nil, w.now.Add(2*time.Hour))
		if !errors.Is(err, ErrSlotExpired) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("expired at the recipient", func(t *testing.T) {
		// A sender with a skewed clock; the recipient checks the signed time.
		slot.Public.Expires = w.now.Add(3 * time.Hour)
		o, err := NewFile(w.alpha.sender(), meta, []SlotUse{{slot, offer.Nonce2}}, nil, w.now.Add(2*time.Hour))
		slot.Public.Expires = secret.Expires
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(o.Header)
		if err := h.Verify(w.alpha.cert); err != nil {
			t.Fatal(err)
		}
		if _, err := h.UnwrapSlot(secret); !errors.Is(err, ErrSlotExpired) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong nonce2", func(t *testing.T) {
		o, err := NewFile(w.alpha.sender(), meta, []SlotUse{{slot, make([]byte, 32)}}, nil, w.now)
		if err != nil {
			t.Fatal(err)
		}
		h, _ := ParseHeader(o.Header)
		h.Verify(w.alpha.cert)
		if _, err := h.UnwrapSlot(secret); !errors.Is(err, ErrUnwrap) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("slot of another contact", func(t *testing.T) {
		_, err := NewFile(carol.sender(), meta, []SlotUse{{slot, offer.Nonce2}}, nil, w.now)
		if !errors.Is(err, ErrSlotBinding) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestNewSlots(t *testing.T) {
	w := newWorld(t)
	offers, secrets, err := NewSlots(w.bravo.maker(), "alpha@localhost", []SealTo{w.alpha.sealTo()}, w.now, time.Hour, DefaultSlots)
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != DefaultSlots || len(secrets) != DefaultSlots {
		t.Fatalf("%d offers, %d secrets", len(offers), len(secrets))
	}
	seen := map[SlotID]bool{}
	for i, o := range offers {
		if seen[o.ID] || secrets[i].ID != o.ID {
			t.Fatalf("slot %d: id repeated or mismatched", i)
		}
		seen[o.ID] = true
		// A proof for one slot never takes another.
		s, _ := ParseSealedSlot(o.Sealed)
		slot, err := s.Open(w.alpha.opener(), w.bravo.cert, w.now)
		if err != nil {
			t.Fatal(err)
		}
		next := offers[(i+1)%len(offers)]
		if err := VerifySlotProof(next.ID, next.ProofHash, slot.Proof()); !errors.Is(err, ErrSlotProof) {
			t.Fatalf("proof of slot %d took slot %d: %v", i, (i+1)%len(offers), err)
		}
	}
}

func TestContentWriterChecksSize(t *testing.T) {
	w := newWorld(t)
	u, _ := w.takeSlot(t, w.bravo)
	o, err := NewFile(w.alpha.sender(), Metadata{Size: 3, SHA256: sha256.Sum256([]byte("abc"))}, []SlotUse{u}, nil, w.now)
	if err != nil {
		t.Fatal(err)
	}
	cw, _ := o.ContentWriter(io.Discard)
	if _, err := cw.Write([]byte("abcd")); !errors.Is(err, ErrSize) {
		t.Fatalf("got %v", err)
	}
	cw.Write([]byte("abd"))
	if err := cw.Close(); !errors.Is(err, ErrSize) {
		t.Fatalf("got %v", err)
	}
}
