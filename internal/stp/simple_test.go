package stp

import (
	"bytes"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/phonex/phonex/internal/wire"
)

func sealFor(t testing.TB, f *fixture, p Protocol, out *Outgoing) []byte {
	t.Helper()
	if out.Sent.IsZero() {
		out.Sent = testNow
	}
	var env []byte
	var err error
	switch p {
	case SimpleV1, SimpleV2:
		env, err = SealSimple(p.Version, f.Alice.rsaSender(), f.Bob.recipient(), out)
	case SimpleV3:
		s := f.Alice.edSender()
		s.CertificateVersion = "ed25519"
		env, err = SealSimple(3, s, f.Bob.recipient(), out)
	case AuthV1:
		env, err = SealAuth(f.Alice.rsaSender(), f.Bob.Address, out)
	case GroupV1, GroupV2:
		env, err = sealGroup(p, f.Alice.rsaSender(), testGroup, []*Recipient{f.Carol.recipient(), f.Bob.recipient()}, out)
	}
	if err != nil {
		t.Fatalf("seal %v: %v", p, err)
	}
	return env
}

var allProtocols = []Protocol{SimpleV1, SimpleV2, SimpleV3, AuthV1, GroupV1, GroupV2}

func TestRoundTrip(t *testing.T) {
	f := loadFixture(t)
	d := NewDispatcher()
	for _, p := range allProtocols {
		for _, payload := range [][]byte{nil, {}, []byte("hi"), bytes.Repeat([]byte{0xa5}, 64<<10)} {
			env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 2, SequenceNumber: u32(3), Payload: payload})
			m, err := d.Open(env, f.receiver(f.Bob))
			if err != nil {
				t.Fatalf("%v: %v", p, err)
			}
			if !bytes.Equal(m.Payload, payload) || m.Sender != f.Alice.Address || *m.SequenceNumber != 3 ||
				!m.Sent.Equal(testNow) || m.Protocol != p {
				t.Errorf("%v: opened %+v", p, m)
			}
		}
	}
}

func TestReplay(t *testing.T) {
	f := loadFixture(t)
	d := NewDispatcher()
	for _, p := range allProtocols {
		env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 1, Payload: []byte("once")})
		r := f.receiver(f.Bob)
		if _, err := d.Open(env, r); err != nil {
			t.Fatalf("%v: first open: %v", p, err)
		}
		if _, err := d.Open(env, r); !errors.Is(err, ErrReplay) {
			t.Errorf("%v: second open: %v, want ErrReplay", p, err)
		}
	}
}

func TestWrongRecipient(t *testing.T) {
	f := loadFixture(t)
	d := NewDispatcher()
	for _, p := range allProtocols {
		env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 1, Payload: []byte("for bob")})
		// Alice is neither the destination nor in a key slot.
		if _, err := d.Open(env, f.receiver(f.Alice)); !errors.Is(err, ErrNotForMe) {
			t.Errorf("%v: %v, want ErrNotForMe", p, err)
		}
		// A receiver claiming Bob's address without Bob's keys cannot decrypt.
		r := f.receiver(f.Alice)
		r.Addresses = []string{f.Bob.Address}
		if p == AuthV1 {
			continue // not encrypted
		}
		if _, err := d.Open(env, r); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%v with another key: %v, want ErrDecrypt", p, err)
		}
	}
}

func TestHashedDestination(t *testing.T) {
	f := loadFixture(t)
	env := sealFor(t, f, SimpleV2, &Outgoing{AmpType: 1, AmpVersion: 1, HashDestination: true, Payload: []byte("x")})
	m, err := NewDispatcher().Open(env, f.receiver(f.Bob))
	if err != nil {
		t.Fatal(err)
	}
	if m.Destination != HashDestination(m.Nonce, f.Bob.Address) {
		t.Errorf("destination %q is not the hash of Bob's address", m.Destination)
	}
	if _, err := NewDispatcher().Open(env, f.receiver(f.Carol)); !errors.Is(err, ErrNotForMe) {
		t.Errorf("carol: %v, want ErrNotForMe", err)
	}
}

func TestTimestampWindow(t *testing.T) {
	f := loadFixture(t)
	for _, p := range allProtocols {
		for _, sent := range []time.Time{testNow.Add(-DefaultMaxAge - time.Second), testNow.Add(DefaultMaxSkew + time.Second)} {
			env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 1, Sent: sent})
			if _, err := NewDispatcher().Open(env, f.receiver(f.Bob)); !errors.Is(err, ErrTimestamp) {
				t.Errorf("%v sent %v: %v, want ErrTimestamp", p, sent, err)
			}
		}
	}
}

func TestDispatcher(t *testing.T) {
	f := loadFixture(t)
	d := NewDispatcher()
	ratchet := Protocol{TypeRatchet, 1}
	env, _ := MarshalEnvelope(ratchet, []byte{1, 2, 3})
	if _, err := d.Open(env, f.receiver(f.Bob)); !errors.Is(err, ErrUnknownProtocol) {
		t.Fatalf("unregistered: %v, want ErrUnknownProtocol", err)
	}
	called := false
	if err := d.Register(ratchet, OpenerFunc(func(p Protocol, b []byte, r *Receiver) (*Message, error) {
		called = p == ratchet && bytes.Equal(b, []byte{1, 2, 3})
		return &Message{Protocol: p}, nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(env, f.receiver(f.Bob)); err != nil || !called {
		t.Fatalf("registered opener: called %v, err %v", called, err)
	}
	for _, b := range [][]byte{nil, {0xff}, {0x08, 0x02}} {
		if _, err := d.Open(b, f.receiver(f.Bob)); !errors.Is(err, ErrMalformed) {
			t.Errorf("envelope %x: %v, want ErrMalformed", b, err)
		}
	}
}

// mutate changes field n of m: a present field is altered, an absent one is
// set to its zero value (or 1 for an algorithm version), so presence alone
// is tested too.
func mutate(m protoreflect.Message, n protoreflect.FieldNumber) {
	fd := m.Descriptor().Fields().ByNumber(n)
	has := m.Has(fd)
	v := m.Get(fd)
	switch fd.Kind() {
	case protoreflect.Int32Kind:
		x := v.Int() + 1
		if !has {
			x = 0
			if n == fEasymBlockVersion || n == fEsymBlockVersion || n == 18 || n == 10 {
				x = 1
			}
		}
		m.Set(fd, protoreflect.ValueOfInt32(int32(x)))
	case protoreflect.Uint32Kind:
		m.Set(fd, protoreflect.ValueOfUint32(uint32(v.Uint()+1)))
	case protoreflect.Uint64Kind:
		m.Set(fd, protoreflect.ValueOfUint64(v.Uint()+1))
	case protoreflect.StringKind:
		m.Set(fd, protoreflect.ValueOfString(v.String()+"x"))
	case protoreflect.BytesKind:
		b := bytes.Clone(v.Bytes())
		if len(b) == 0 {
			b = []byte{0}
		} else {
			b[len(b)-1] ^= 1
		}
		m.Set(fd, protoreflect.ValueOfBytes(b))
	}
}

// tamper parses env's STP message, applies fn and returns the new envelope.
func tamper(t *testing.T, env []byte, fn func(m protoreflect.Message)) []byte {
	t.Helper()
	p, payload, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	var m proto.Message = new(wire.STPSimple)
	if p.Type == TypeGroup {
		m = new(wire.STPSimpleGroup)
	}
	mustUnmarshal(t, payload, m)
	fn(m.ProtoReflect())
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out, err := MarshalEnvelope(p, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTamperMACed flips every field of a sealed message, as an outsider
// would (no keys), and expects the specific error.
func TestTamperMACed(t *testing.T) {
	f := loadFixture(t)
	var none error
	simple := func(p Protocol) map[protoreflect.FieldNumber]error {
		w := map[protoreflect.FieldNumber]error{
			fAmpType: ErrBadMAC, fAmpVersion: ErrBadMAC, fSequenceNumber: ErrBadMAC,
			fMessageSentMiliUTC: ErrBadMAC, fRandomNonce: ErrBadMAC, fSender: ErrBadMAC,
			fDestination: ErrNotForMe, fDestinationType: ErrBadMAC, fSignature: ErrBadSignature,
			fIV: ErrBadMAC, fEasymBlock: ErrDecrypt, fEasymBlockVersion: ErrBadMAC, fEsymBlock: ErrBadMAC,
			fEsymBlockVersion: ErrBadMAC, fHMAC: ErrBadMAC,
			// Not covered by the draft: an explicit default changes nothing.
			10: none, 18: none,
			// certificateVersion only selects the verifying certificate.
			11: ErrUnknownSender,
		}
		if p == SimpleV1 {
			w[fMessageSentMiliUTC] = none // v1 does not cover the timestamp (§2.3)
		}
		if p == SimpleV3 {
			// v3 sends its algorithm versions: changing them is refused.
			w[10], w[fEasymBlockVersion], w[fEsymBlockVersion], w[18] = ErrUnsupported, ErrUnsupported, ErrUnsupported, ErrUnsupported
			w[11] = ErrBadSignature // "ed25519x" falls back to the RSA key in the fixture
		}
		return w
	}
	cases := map[Protocol]map[protoreflect.FieldNumber]error{
		SimpleV1: simple(SimpleV1), SimpleV2: simple(SimpleV2), SimpleV3: simple(SimpleV3),
		AuthV1: {
			fAmpType: ErrBadSignature, fAmpVersion: ErrBadSignature, fSequenceNumber: ErrBadSignature,
			fMessageSentMiliUTC: ErrBadSignature, fRandomNonce: ErrBadSignature, fSender: ErrUnknownSender,
			fDestination: ErrNotForMe, fDestinationType: ErrBadSignature, fSignature: ErrBadSignature,
			fPayload: ErrBadSignature, 10: none, 11: ErrUnknownSender,
		},
		GroupV1: {
			fAmpType: ErrBadMAC, fAmpVersion: ErrBadMAC, fSequenceNumber: ErrBadMAC,
			fMessageSentMiliUTC: ErrBadMAC, fRandomNonce: ErrBadMAC, fSender: ErrBadMAC,
			fDestination: ErrBadMAC, fDestinationType: ErrBadMAC, fSignature: ErrBadSignature,
			fIV: ErrBadMAC, fEsymBlock: ErrBadMAC, fEsymBlockVersion: ErrUnsupported,
			fHMAC: ErrBadMAC, 10: ErrBadSignature, 18: ErrUnsupported, 11: ErrUnknownSender,
		},
	}
	for p, fields := range cases {
		env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 2, Payload: []byte("tamper me")})
		for n, want := range fields {
			bad := tamper(t, env, func(m protoreflect.Message) { mutate(m, n) })
			r := f.receiver(f.Bob)
			r.SenderCertificate = strictCerts(f, p == SimpleV3)
			_, err := NewDispatcher().Open(bad, r)
			if want == nil && err != nil || want != nil && !errors.Is(err, want) {
				t.Errorf("%v field %d: %v, want %v", p, n, err, want)
			}
		}
	}
	// A key slot of another recipient is covered by the HMAC too.
	env := sealFor(t, f, GroupV1, &Outgoing{AmpType: 1, AmpVersion: 1, Payload: []byte("x")})
	bad := tamper(t, env, func(m protoreflect.Message) {
		m.Interface().(*wire.STPSimpleGroup).KeySlots[0].SealedKey[0] ^= 1
	})
	if _, err := NewDispatcher().Open(bad, f.receiver(f.Bob)); !errors.Is(err, ErrBadMAC) {
		t.Errorf("other key slot: %v, want ErrBadMAC", err)
	}
}

// strictCerts knows each sender's RSA key under "" and its Ed25519 key
// under "ed25519" (or, for ed, under anything but "").
func strictCerts(f *fixture, ed bool) func(string, string) (*x509.Certificate, error) {
	r := f.receiver(f.Bob)
	return func(sender, cv string) (*x509.Certificate, error) {
		switch {
		case cv == "" || cv == "ed25519":
			return r.SenderCertificate(sender, cv)
		case ed:
			return r.SenderCertificate(sender, "")
		}
		return nil, errors.New("unknown certificate version")
	}
}
