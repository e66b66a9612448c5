package ratchet

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

// fanoutGroup is Alice's device a1 writing to Bob's three devices and to
// Alice's own two other devices.
type fanoutGroup struct {
	sender    *device
	devices   map[DeviceID]*device
	sending   map[DeviceID]*Session // a1's sessions
	receiving map[DeviceID]*Session // each device's session with a1
}

func newFanoutGroup(t testing.TB) *fanoutGroup {
	t.Helper()
	g := &fanoutGroup{
		sender:    newDevice(t, "alice@x/a1", 100, 0),
		devices:   map[DeviceID]*device{},
		sending:   map[DeviceID]*Session{},
		receiving: map[DeviceID]*Session{},
	}
	for i, id := range []DeviceID{"alice@x/a2", "alice@x/a3", "bob@x/b1", "bob@x/b2", "bob@x/b3"} {
		d := newDevice(t, id, uint64(200+i), 2)
		g.devices[id] = d
		s, _, err := InitiateSession(g.sender.r, g.sender.ik, d.bundle())
		if err != nil {
			t.Fatal(err)
		}
		g.sending[id] = s
	}
	return g
}

func TestFanout(t *testing.T) {
	g := newFanoutGroup(t)
	ad := []byte("conversation 42")
	for round := range 4 {
		text := fmt.Sprintf("hello everyone, round %d", round)
		body, headers, err := EncryptFanout(g.sender.r, g.sender.id, []byte(text), g.sending, ad)
		if err != nil {
			t.Fatal(err)
		}
		if len(headers) != 5 {
			t.Fatalf("%d headers", len(headers))
		}
		f, err := ParseFanoutBody(body)
		if err != nil || len(f.Recipients) != 5 || f.Sender != g.sender.id {
			t.Fatalf("body: %+v, %v", f, err)
		}
		for id, d := range g.devices {
			var got []byte
			if s := g.receiving[id]; s == nil {
				s, got, err = AcceptFanout(d.r, d.ik, d.store, g.sender.id, id, body, headers[id], ad)
				g.receiving[id] = s
			} else {
				got, err = DecryptFanout(s, g.sender.id, id, body, headers[id], ad)
			}
			if err != nil {
				t.Fatalf("round %d, %s: %v", round, id, err)
			}
			if string(got) != text {
				t.Fatalf("%s got %q", id, got)
			}
		}
		// Replies turn the ratchets: each device answers a1 one to one.
		if round%2 == 1 {
			for id, s := range g.receiving {
				mustDecrypt(t, g.sending[id], mustEncrypt(t, s, "ack"), "ack")
			}
		}
	}
}

func TestFanoutRejects(t *testing.T) {
	g := newFanoutGroup(t)
	ad := []byte("conversation")
	body, headers, err := EncryptFanout(g.sender.r, g.sender.id, []byte("first"), g.sending, ad)
	if err != nil {
		t.Fatal(err)
	}
	for id, d := range g.devices {
		s, _, err := AcceptFanout(d.r, d.ik, d.store, g.sender.id, id, body, headers[id], ad)
		if err != nil {
			t.Fatal(err)
		}
		g.receiving[id] = s
	}
	body, headers, err = EncryptFanout(g.sender.r, g.sender.id, []byte("second"), g.sending, ad)
	if err != nil {
		t.Fatal(err)
	}
	const b1 = DeviceID("bob@x/b1")
	s := g.receiving[b1]
	before := snapshot(t, s)
	flip := func(b []byte, i int) []byte { c := bytes.Clone(b); c[i] ^= 1; return c }
	cases := map[string]func() error{
		"tampered body": func() error {
			_, err := DecryptFanout(s, g.sender.id, b1, flip(body, len(body)-3), headers[b1], ad)
			return err
		},
		"tampered recipient list": func() error {
			_, err := DecryptFanout(s, g.sender.id, b1, flip(body, 20), headers[b1], ad)
			return err
		},
		"other device's header": func() error {
			_, err := DecryptFanout(s, g.sender.id, b1, body, headers["bob@x/b2"], ad)
			return err
		},
		"wrong associated data": func() error {
			_, err := DecryptFanout(s, g.sender.id, b1, body, headers[b1], []byte("other"))
			return err
		},
		"wrong sender": func() error {
			_, err := DecryptFanout(s, "mallory@x/m1", b1, body, headers[b1], ad)
			return err
		},
		"not a recipient": func() error {
			_, err := DecryptFanout(s, g.sender.id, "carol@x/c1", body, headers[b1], ad)
			if !errors.Is(err, ErrNotRecipient) {
				return nil
			}
			return err
		},
	}
	for name, f := range cases {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if !bytes.Equal(before, snapshot(t, s)) {
			t.Fatalf("%s: state changed", name)
		}
	}
	got, err := DecryptFanout(s, g.sender.id, b1, body, headers[b1], ad)
	if err != nil || string(got) != "second" {
		t.Fatalf("untampered: %q, %v", got, err)
	}
	if _, err := DecryptFanout(s, g.sender.id, b1, body, headers[b1], ad); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay: %v", err)
	}

	// A first message whose body fails leaves no session and consumes no
	// prekey.
	fresh := newDevice(t, "bob@x/b9", 300, 1)
	fs, _, err := InitiateSession(g.sender.r, g.sender.ik, fresh.bundle())
	if err != nil {
		t.Fatal(err)
	}
	body, headers, err = EncryptFanout(g.sender.r, g.sender.id, []byte("x"), map[DeviceID]*Session{fresh.id: fs}, ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := AcceptFanout(fresh.r, fresh.ik, fresh.store, g.sender.id, fresh.id, flip(body, len(body)-1), headers[fresh.id], ad); err == nil {
		t.Fatal("tampered first body accepted")
	}
	if x, pq := fresh.store.OneTimePrekeys(); x != 1 || pq != 1 {
		t.Fatal("rejected first message consumed prekeys")
	}
	if _, got, err := AcceptFanout(fresh.r, fresh.ik, fresh.store, g.sender.id, fresh.id, body, headers[fresh.id], ad); err != nil || string(got) != "x" {
		t.Fatalf("first body: %q, %v", got, err)
	}

	// A responder session that has not received cannot be a fan-out source.
	if _, _, err := EncryptFanout(nil, b1, []byte("x"), map[DeviceID]*Session{"y": func() *Session {
		_, bob := newPair(t, 5)
		return bob
	}()}, nil); !errors.Is(err, ErrNoSendingChain) {
		t.Fatalf("responder as source: %v", err)
	}
}
