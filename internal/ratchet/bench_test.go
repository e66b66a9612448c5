package ratchet

import (
	"testing"
)

// BenchmarkInitiateAccept measures a full PQXDH key agreement: bundle
// verification, four X25519 operations and ML-KEM-768 encapsulation on the
// initiator; the responder's side with decapsulation and the first message.
func BenchmarkInitiateAccept(b *testing.B) {
	alice := newDevice(b, "alice@x/1", 1, 0)
	bob := newDevice(b, "bob@x/1", 2, 0)
	bundle := bob.bundle()
	b.ReportAllocs()
	for b.Loop() {
		s, _, err := InitiateSession(alice.r, alice.ik, bundle)
		if err != nil {
			b.Fatal(err)
		}
		m, err := s.Encrypt([]byte("hello"), nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := AcceptSession(bob.r, bob.ik, bob.store, m, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInitiate measures the initiator's side alone.
func BenchmarkInitiate(b *testing.B) {
	alice := newDevice(b, "alice@x/1", 1, 0)
	bob := newDevice(b, "bob@x/1", 2, 0)
	bundle := bob.bundle()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := InitiateSession(alice.r, alice.ik, bundle); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncryptDecrypt measures one 256-byte message each way on the
// symmetric ratchet (no DH step).
func BenchmarkEncryptDecrypt(b *testing.B) {
	alice, bob := newPair(b, 1)
	pt := make([]byte, 256)
	b.ReportAllocs()
	b.SetBytes(int64(len(pt)))
	for b.Loop() {
		m, err := alice.Encrypt(pt, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Decrypt(m, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingPong measures a message each way with a DH ratchet step on
// every message (the conversational worst case).
func BenchmarkPingPong(b *testing.B) {
	alice, bob := newPair(b, 1)
	pt := make([]byte, 256)
	m, _ := alice.Encrypt(pt, nil)
	if _, err := bob.Decrypt(m, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		m, _ := bob.Encrypt(pt, nil)
		if _, err := alice.Decrypt(m, nil); err != nil {
			b.Fatal(err)
		}
		m, _ = alice.Encrypt(pt, nil)
		if _, err := bob.Decrypt(m, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFanout4 encrypts a 1 KiB body for four devices and decrypts it
// on all four.
func BenchmarkFanout4(b *testing.B) {
	sending := map[DeviceID]*Session{}
	receiving := map[DeviceID]*Session{}
	for i, id := range []DeviceID{"d1", "d2", "d3", "d4"} {
		a, r := newPair(b, uint64(10+i))
		m, _ := a.Encrypt([]byte("x"), nil)
		if _, err := r.Decrypt(m, nil); err != nil {
			b.Fatal(err)
		}
		sending[id], receiving[id] = a, r
	}
	body := make([]byte, 1024)
	rnd := seeded(99)
	b.ReportAllocs()
	for b.Loop() {
		cb, headers, err := EncryptFanout(rnd, "sender", body, sending, []byte("ad"))
		if err != nil {
			b.Fatal(err)
		}
		for id, s := range receiving {
			if _, err := DecryptFanout(s, "sender", id, cb, headers[id], []byte("ad")); err != nil {
				b.Fatal(err)
			}
		}
	}
}
