package wire

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
)

var deterministic = proto.MarshalOptions{Deterministic: true}

// TestExplicitPresence: a field set to zero is emitted, an unset one is
// not. Signatures over these messages depend on it.
func TestExplicitPresence(t *testing.T) {
	cases := []struct {
		name string
		m    proto.Message
		want []byte
	}{
		{"unset", &STPSimple{}, nil},
		{"zeros", &STPSimple{AmpType: proto.Int32(0), SequenceNumber: proto.Uint32(0), Sender: proto.String(""), Payload: []byte{}},
			[]byte{0x08, 0x00, 0x18, 0x00, 0x32, 0x00, 0xaa, 0x01, 0x00}},
		{"virtual fields", &STPSimple{ProtocolType: proto.Int32(2), ProtocolVersion: proto.Int32(0)},
			[]byte{0xb0, 0x01, 0x02, 0xb8, 0x01, 0x00}},
		{"envelope", &MessageProtocolEnvelope{ProtocolType: proto.Int32(2), ProtocolVersion: proto.Int32(1), SequenceNumber: proto.Uint32(0), Payload: []byte{}},
			[]byte{0x08, 0x02, 0x10, 0x01, 0x18, 0x00, 0x22, 0x00}},
		{"group slot", &STPSimpleGroup{KeySlots: []*KeySlot{{Version: proto.Int32(0)}}},
			[]byte{0x6a, 0x02, 0x10, 0x00}},
		{"AMPSimple", &AMPSimple{Message: []byte{}, Nonce: proto.Int32(0)}, []byte{0x0a, 0x00, 0x10, 0x00}},
	}
	for _, c := range cases {
		b, err := deterministic.Marshal(c.m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, c.want) {
			t.Errorf("%s: %x, want %x", c.name, b, c.want)
		}
	}
}

// TestFieldOrder: serialisation follows field numbers whatever the order of
// assignment, so the covered bytes of a signature are canonical.
func TestFieldOrder(t *testing.T) {
	m := &STPSimple{ProtocolType: proto.Int32(2), AmpType: proto.Int32(1), Payload: []byte{9}, RandomNonce: proto.Uint32(5)}
	b, _ := deterministic.Marshal(m)
	want := []byte{0x08, 0x01, 0x28, 0x05, 0xaa, 0x01, 0x01, 0x09, 0xb0, 0x01, 0x02}
	if !bytes.Equal(b, want) {
		t.Errorf("%x, want %x", b, want)
	}
}

// fuzzCanonical checks that whatever parses re-encodes to a canonical form
// that parses back to an equal message and encodes to the same bytes.
func fuzzCanonical(f *testing.F, newMsg func() proto.Message, seeds ...proto.Message) {
	for _, s := range seeds {
		b, _ := deterministic.Marshal(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := newMsg()
		if proto.Unmarshal(b, m) != nil {
			return
		}
		c1, err := deterministic.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2 := newMsg()
		if err := proto.Unmarshal(c1, m2); err != nil {
			t.Fatalf("canonical form does not parse: %v", err)
		}
		c2, _ := deterministic.Marshal(m2)
		if !proto.Equal(m, m2) || !bytes.Equal(c1, c2) {
			t.Fatalf("canonical form not stable: %x vs %x", c1, c2)
		}
	})
}

func FuzzEnvelopeWire(f *testing.F) {
	fuzzCanonical(f, func() proto.Message { return new(MessageProtocolEnvelope) },
		&MessageProtocolEnvelope{ProtocolType: proto.Int32(2), ProtocolVersion: proto.Int32(2), Payload: []byte{1, 2}})
}

func FuzzSTPSimpleWire(f *testing.F) {
	fuzzCanonical(f, func() proto.Message { return new(STPSimple) },
		&STPSimple{AmpType: proto.Int32(1), Sender: proto.String("a@b/c"), Iv: make([]byte, 12), Hmac: []byte{1}})
}

func FuzzSTPSimpleGroupWire(f *testing.F) {
	fuzzCanonical(f, func() proto.Message { return new(STPSimpleGroup) },
		&STPSimpleGroup{KeySlots: []*KeySlot{{Recipient: proto.String("a@b/c"), Version: proto.Int32(2), SealedKey: []byte{1}}}})
}
