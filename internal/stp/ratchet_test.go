package stp

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestRatchetRoundTrip(t *testing.T) {
	m := &RatchetMessage{AmpType: 2, AmpVersion: 2, Sent: time.UnixMilli(1700000000123), Nonce: 0, Sender: "a@x/d1", Destination: "b@x",
		Slots: []RatchetSlot{{"b@x/d1", []byte{1, 2}}, {"a@x/d2", []byte{3}}}, Body: []byte("ciphertext")}
	env, err := MarshalRatchet(m)
	if err != nil {
		t.Fatal(err)
	}
	p, payload, err := ParseEnvelope(env)
	if err != nil || p != RatchetV1 {
		t.Fatalf("envelope %v %v", p, err)
	}
	back, err := ParseRatchet(payload)
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := m.AD()
	a2, _ := back.AD()
	if !bytes.Equal(a1, a2) || back.Sender != m.Sender || !back.Sent.Equal(m.Sent) || back.Nonce != 0 {
		t.Fatalf("round trip: %+v", back)
	}
	if h, err := back.Slot("a@x/d2"); err != nil || !bytes.Equal(h, []byte{3}) {
		t.Fatalf("slot: %v %v", h, err)
	}
	if _, err := back.Slot("c@x/d1"); !errors.Is(err, ErrNotForMe) {
		t.Fatalf("foreign slot: %v", err)
	}
	// A changed header field changes the associated data.
	back.Destination = "c@x"
	if a3, _ := back.AD(); bytes.Equal(a1, a3) {
		t.Fatal("destination not bound")
	}
}

func FuzzParseRatchet(f *testing.F) {
	m := &RatchetMessage{AmpType: 2, AmpVersion: 2, Sent: time.UnixMilli(1), Sender: "a", Destination: "b", Slots: []RatchetSlot{{"c", []byte{1}}}, Body: []byte{2}}
	env, _ := MarshalRatchet(m)
	_, payload, _ := ParseEnvelope(env)
	f.Add(payload)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseRatchet(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error kind: %v", err)
			}
			return
		}
		env, err := MarshalRatchet(m)
		if err != nil {
			t.Fatal(err)
		}
		_, payload, err := ParseEnvelope(env)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseRatchet(payload)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoded STPRatchet parses to %+v, %v; want %+v", m2, err, m)
		}
		if again, _ := MarshalRatchet(m2); !bytes.Equal(again, env) {
			t.Fatal("STPRatchet encoding not canonical")
		}
	})
}
