package stp

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// fuzzSeeds returns the recorded vector envelopes.
func fuzzSeeds(f *testing.F) []*vector {
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		f.Fatal(err)
	}
	var vs []*vector
	if err := json.Unmarshal(b, &vs); err != nil {
		f.Fatal(err)
	}
	return vs
}

// fuzzReceiver is Bob without a replay guard, so every input is judged on
// its own, and without private keys: an RSA or ML-KEM decryption under
// coverage instrumentation takes long enough to starve the fuzzer, and no
// mutated input gets past the HMAC anyway. Signature verification (the
// sender certificates) stays, for STPSimpleAuth.
func fuzzReceiver(f *testing.F) *Receiver {
	fx := loadFixture(f)
	r := fx.receiver(fx.Bob)
	r.Replay = nil
	r.RSAKey, r.KEMKey = nil, nil
	return r
}

func FuzzEnvelope(f *testing.F) {
	for _, v := range fuzzSeeds(f) {
		f.Add([]byte(v.Envelope))
	}
	r := fuzzReceiver(f)
	d := NewDispatcher()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := d.Open(b, r)
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		// What parses re-encodes (deterministic protobuf, so canonical) to
		// an envelope that parses to the same protocol and payload.
		p, payload, err := ParseEnvelope(b)
		if err != nil {
			return
		}
		enc, err := MarshalEnvelope(p, payload)
		if err != nil {
			t.Fatal(err)
		}
		p2, payload2, err := ParseEnvelope(enc)
		if err != nil || p2 != p || !bytes.Equal(payload2, payload) {
			t.Fatalf("re-encoded envelope parses to %v %x, %v; want %v %x", p2, payload2, err, p, payload)
		}
		if again, _ := MarshalEnvelope(p2, payload2); !bytes.Equal(again, enc) {
			t.Fatalf("envelope encoding not canonical:\n%x\n%x", enc, again)
		}
	})
}

// fuzzSTP fuzzes one STP's opener, under each of its versions, with the
// payloads of its vectors as seeds.
func fuzzSTP(f *testing.F, typ int32, versions []int32, open func(Protocol, []byte, *Receiver) (*Message, error)) {
	for _, v := range fuzzSeeds(f) {
		if p, payload, err := ParseEnvelope(v.Envelope); err == nil && p.Type == typ {
			f.Add([]byte(payload))
		}
	}
	r := fuzzReceiver(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range versions {
			m, err := open(Protocol{typ, v}, b, r)
			if err == nil && m == nil {
				t.Fatal("nil message without error")
			}
		}
	})
}

func FuzzOpenSimple(f *testing.F) { fuzzSTP(f, TypeSimple, []int32{1, 2, 3}, openSimple) }
func FuzzOpenAuth(f *testing.F)   { fuzzSTP(f, TypeAuth, []int32{1}, openAuth) }
func FuzzOpenGroup(f *testing.F)  { fuzzSTP(f, TypeGroup, []int32{1, 2}, openGroup) }
