package stp

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/phonex/phonex/internal/wire"
)

// forgery is what a recipient (who knows encKey and macKey) may change
// before re-encrypting and re-MACing a message.
type forgery struct {
	p                    Protocol
	encKey, macKey, body []byte
	rewrap               bool
}

// forge opens env as Bob, lets fn change the message, then recomputes the
// key block (if asked), the symmetric block and the HMAC, so only the
// signature can catch the change.
func forge(t *testing.T, f *fixture, env []byte, fn func(m *wire.STPSimple, k *forgery)) []byte {
	t.Helper()
	p, payload, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	var m wire.STPSimple
	mustUnmarshal(t, payload, &m)
	s, _ := simpleSuite(p.Version)
	enc, mac, err := unwrapKeys(s.key, f.receiver(f.Bob), m.EasymBlock)
	if err != nil {
		t.Fatal(err)
	}
	body, err := openPayload(s.sym, enc, m.Iv, m.EsymBlock)
	if err != nil {
		t.Fatal(err)
	}
	k := &forgery{p: p, encKey: enc, macKey: mac, body: body}
	fn(&m, k)
	if k.rewrap {
		if m.EasymBlock, err = wrapKeys(s.key, f.Bob.recipient(), append(bytes.Clone(k.encKey), k.macKey...)); err != nil {
			t.Fatal(err)
		}
	}
	aead, _ := newGCM(k.encKey)
	m.EsymBlock = aead.Seal(bytes.Clone(m.Iv), m.Iv, k.body, nil)
	_, macList := simpleLists(k.p.Version)
	covered, err := coveredBytes(&m, macList, &virtualFields{encKey: k.encKey, macKey: k.macKey, protocol: k.p})
	if err != nil {
		t.Fatal(err)
	}
	if m.Hmac, err = computeMAC(s.mac, k.macKey, covered); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&m)
	out, _ := MarshalEnvelope(k.p, b)
	return out
}

// TestTamperSigned changes each signed field as a recipient could (with a
// valid HMAC) and expects ErrBadSignature: the signature binds every field
// the draft lists, the virtual ones included.
func TestTamperSigned(t *testing.T) {
	f := loadFixture(t)
	const alias = "bob@example.org"
	cases := []struct {
		name string
		fn   func(m *wire.STPSimple, k *forgery)
		v1ok bool // not covered in v1
	}{
		{"unchanged", func(*wire.STPSimple, *forgery) {}, true},
		{"ampType", func(m *wire.STPSimple, _ *forgery) { *m.AmpType++ }, false},
		{"ampVersion", func(m *wire.STPSimple, _ *forgery) { *m.AmpVersion++ }, false},
		{"sequenceNumber", func(m *wire.STPSimple, _ *forgery) { *m.SequenceNumber++ }, false},
		{"sequenceNumber removed", func(m *wire.STPSimple, _ *forgery) { m.SequenceNumber = nil }, false},
		{"messageSentMiliUTC", func(m *wire.STPSimple, _ *forgery) { *m.MessageSentMiliUTC-- }, true},
		{"randomNonce", func(m *wire.STPSimple, _ *forgery) { *m.RandomNonce++ }, false},
		{"sender", func(m *wire.STPSimple, _ *forgery) { m.Sender = proto.String(f.Carol.Address) }, false},
		{"destination", func(m *wire.STPSimple, _ *forgery) { m.Destination = proto.String(alias) }, false},
		{"destinationType explicit 0", func(m *wire.STPSimple, _ *forgery) { m.DestinationType = proto.Int32(0) }, false},
		{"iv", func(m *wire.STPSimple, _ *forgery) { m.Iv = bytes.Clone(m.Iv); m.Iv[0] ^= 1 }, false},
		{"encKey", func(_ *wire.STPSimple, k *forgery) { k.encKey = bytes.Repeat([]byte{1}, 32); k.rewrap = true }, false},
		{"macKey", func(_ *wire.STPSimple, k *forgery) { k.macKey = bytes.Repeat([]byte{2}, 32); k.rewrap = true }, false},
		{"payload", func(_ *wire.STPSimple, k *forgery) { k.body = []byte("forged") }, false},
	}
	for _, p := range []Protocol{SimpleV1, SimpleV2, SimpleV3} {
		env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 2, SequenceNumber: u32(0), Payload: []byte("original")})
		for _, c := range cases {
			bad := forge(t, f, env, c.fn)
			r := f.receiver(f.Bob)
			r.Addresses = append(r.Addresses, alias)
			_, err := NewDispatcher().Open(bad, r)
			wantOK := c.name == "unchanged" || p == SimpleV1 && c.v1ok
			if wantOK && err != nil || !wantOK && !errors.Is(err, ErrBadSignature) {
				t.Errorf("%v %s: %v, want ok=%v or ErrBadSignature", p, c.name, err, wantOK)
			}
		}
	}
	// Downgrade: a v2 message relabelled v1 in the envelope, re-MACed
	// under v1 rules, fails: protocolVersion is a signed virtual field.
	env := sealFor(t, f, SimpleV2, &Outgoing{AmpType: 1, AmpVersion: 2, Payload: []byte("v2")})
	bad := forge(t, f, env, func(_ *wire.STPSimple, k *forgery) { k.p = SimpleV1 })
	if _, err := NewDispatcher().Open(bad, f.receiver(f.Bob)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("v2 relabelled v1: %v, want ErrBadSignature", err)
	}
}

// TestZeroFieldsCovered checks that zero-valued fields are in the signed
// and MACed bytes (explicit presence), so removing them is detected.
func TestZeroFieldsCovered(t *testing.T) {
	f := loadFixture(t)
	env := sealFor(t, f, SimpleV2, &Outgoing{AmpType: 0, AmpVersion: 0, SequenceNumber: u32(0), Payload: []byte{}})
	signed, maced := covered(t, env, f.receiver(f.Bob))
	for _, prefix := range [][]byte{signed, maced} {
		// ampType=0, ampVersion=0, sequenceNumber=0: tags 0x08 0x10 0x18.
		if !bytes.HasPrefix(prefix, []byte{0x08, 0x00, 0x10, 0x00, 0x18, 0x00}) {
			t.Errorf("covered bytes %x do not start with the zero fields", prefix[:8])
		}
	}
	// payload (21) empty but present: tag 0xaa 0x01, length 0.
	if !bytes.Contains(signed, []byte{0xaa, 0x01, 0x00}) {
		t.Errorf("signed bytes lack the empty payload field")
	}
	for name, fn := range map[string]func(*wire.STPSimple, *forgery){
		"ampType removed":    func(m *wire.STPSimple, _ *forgery) { m.AmpType = nil },
		"ampVersion removed": func(m *wire.STPSimple, _ *forgery) { m.AmpVersion = nil },
		"sequence removed":   func(m *wire.STPSimple, _ *forgery) { m.SequenceNumber = nil },
	} {
		bad := forge(t, f, env, fn)
		if _, err := NewDispatcher().Open(bad, f.receiver(f.Bob)); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: %v, want ErrBadSignature", name, err)
		}
	}
}

// TestVirtualFieldsRefused: the draft forbids sending virtual fields, and
// unknown fields would be covered by neither signature nor HMAC.
func TestVirtualFieldsRefused(t *testing.T) {
	f := loadFixture(t)
	for _, p := range []Protocol{SimpleV2, GroupV1, AuthV1} {
		env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 1, Payload: []byte("x")})
		unknown := tamper(t, env, func(m protoreflect.Message) { m.SetUnknown(protoreflect.RawFields{0xc8, 0x01, 0x01}) })
		if _, err := NewDispatcher().Open(unknown, f.receiver(f.Bob)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v with unknown field 25: %v, want ErrMalformed", p, err)
		}
		for _, n := range []int{19, 20, 21, 22, 23} {
			if p == AuthV1 && n == 21 {
				continue
			}
			bad := tamper(t, env, func(m protoreflect.Message) { mutate(m, protoreflect.FieldNumber(n)) })
			if _, err := NewDispatcher().Open(bad, f.receiver(f.Bob)); !errors.Is(err, ErrMalformed) {
				t.Errorf("%v with field %d: %v, want ErrMalformed", p, n, err)
			}
		}
	}
}

// TestExplicitDefaults: v1 and v2 accept version fields that spell out the
// draft's defaults (§2.3: "can be omitted, default is ...").
func TestExplicitDefaults(t *testing.T) {
	f := loadFixture(t)
	for _, p := range []Protocol{SimpleV1, SimpleV2} {
		env := sealFor(t, f, p, &Outgoing{AmpType: 1, AmpVersion: 1, Payload: []byte("x")})
		explicit := forge(t, f, env, func(m *wire.STPSimple, _ *forgery) {
			m.SignatureVersion = proto.Int32(SigRSA)
			m.EasymBlockVersion = proto.Int32(KeyRSAOAEP)
			m.EsymBlockVersion = proto.Int32(SymAESGCM)
			m.HmacVersion = proto.Int32(MACSHA1)
		})
		if _, err := NewDispatcher().Open(explicit, f.receiver(f.Bob)); err != nil {
			t.Errorf("%v with explicit defaults: %v", p, err)
		}
		other := forge(t, f, env, func(m *wire.STPSimple, _ *forgery) { m.HmacVersion = proto.Int32(MACSHA256) })
		if _, err := NewDispatcher().Open(other, f.receiver(f.Bob)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%v with HMAC-SHA-256: %v, want ErrUnsupported", p, err)
		}
	}
}
