package ratchet

import (
	"bytes"
	"testing"
)

// fuzzFixture is a conversation in progress, for fuzz seeds.
func fuzzFixture(f *testing.F) (alice, bob *Session, msgs [][]byte) {
	alice, bob = newPair(f, 77)
	for i := range 3 {
		m := mustEncrypt(f, alice, "seed message")
		if i < 2 {
			mustDecrypt(f, bob, m, "seed message")
		}
		msgs = append(msgs, m)
	}
	return alice, bob, msgs
}

func FuzzParseMessage(f *testing.F) {
	_, _, msgs := fuzzFixture(f)
	for _, m := range msgs {
		f.Add(m)
	}
	alice := newDevice(f, "a", 1, 0)
	bob := newDevice(f, "b", 2, 1)
	s, _, err := InitiateSession(alice.r, alice.ik, bob.bundle())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustEncrypt(f, s, "with initial"))
	f.Add([]byte{1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil {
			return
		}
		if !bytes.Equal(append(bytes.Clone(m.prefix), m.Body...), b) {
			t.Fatal("prefix and body do not cover the message")
		}
		// The format is canonical: the parsed message re-encodes to its
		// bytes.
		var initial []byte
		if m.Initial != nil {
			if initial, err = m.Initial.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
		if again := append(appendPrefix(nil, initial, m.Header), m.Body...); !bytes.Equal(again, b) {
			t.Fatalf("message re-encodes to other bytes:\n%x\n%x", b, again)
		}
	})
}

func FuzzParseInitialMessage(f *testing.F) {
	alice := newDevice(f, "a", 1, 0)
	bob := newDevice(f, "b", 2, 1)
	_, im, err := InitiateSession(alice.r, alice.ik, bob.bundle())
	if err != nil {
		f.Fatal(err)
	}
	enc, _ := im.MarshalBinary()
	f.Add(enc)
	f.Add(enc[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		im, err := ParseInitialMessage(b)
		if err != nil {
			return
		}
		out, err := im.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encode: %v", err)
		}
	})
}

func FuzzSessionState(f *testing.F) {
	alice, bob, msgs := fuzzFixture(f)
	f.Add(snapshot(f, alice))
	f.Add(snapshot(f, bob))
	pending := msgs[2]
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Session
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		out, err := s.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encode: %v", err)
		}
		s.SetRand(seeded(1))
		_, _ = s.Decrypt(pending, nil)
		if s.CanSend() {
			if _, err := s.Encrypt([]byte("x"), nil); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzDecrypt feeds arbitrary messages to a live session: no panic, and a
// rejected message leaves the state as it was.
func FuzzDecrypt(f *testing.F) {
	_, bob, msgs := fuzzFixture(f)
	for _, m := range msgs {
		f.Add(m)
	}
	state := snapshot(f, bob)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Session
		if err := s.UnmarshalBinary(state); err != nil {
			t.Fatal(err)
		}
		s.SetRand(seeded(2))
		if _, err := s.Decrypt(b, nil); err != nil && !bytes.Equal(snapshot(t, &s), state) {
			t.Fatal("rejected message changed state")
		}
	})
}

func FuzzParsePrekeyBundle(f *testing.F) {
	bob := newDevice(f, "b", 2, 1)
	for range 2 {
		enc, err := bob.bundle().MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bundle, err := ParsePrekeyBundle(b)
		if err != nil {
			return
		}
		out, err := bundle.MarshalBinary()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("re-encode: %v", err)
		}
		_ = bundle.Verify()
	})
}

func FuzzFanout(f *testing.F) {
	alice, bob := newPair(f, 88)
	mustDecrypt(f, bob, mustEncrypt(f, alice, "x"), "x")
	body, headers, err := EncryptFanout(seeded(3), "alice@x/a1", []byte("fan-out seed"), map[DeviceID]*Session{"bob@x/b1": alice}, []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body, headers["bob@x/b1"])
	state := snapshot(f, bob)
	f.Fuzz(func(t *testing.T, body, header []byte) {
		if fb, err := ParseFanoutBody(body); err == nil {
			if !bytes.Equal(append(bytes.Clone(fb.prefix), fb.Ciphertext...), body) {
				t.Fatal("prefix and ciphertext do not cover the body")
			}
			if again := append(appendFanoutPrefix(nil, fb.Sender, fb.Recipients), fb.Ciphertext...); !bytes.Equal(again, body) {
				t.Fatalf("cipher body re-encodes to other bytes:\n%x\n%x", body, again)
			}
		}
		var s Session
		if err := s.UnmarshalBinary(state); err != nil {
			t.Fatal(err)
		}
		s.SetRand(seeded(4))
		if _, err := DecryptFanout(&s, "alice@x/a1", "bob@x/b1", body, header, []byte("ad")); err != nil &&
			!bytes.Equal(snapshot(t, &s), state) {
			t.Fatal("rejected fan-out message changed state")
		}
	})
}
