package stp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/wire"
)

// vector is one known-answer test: inputs, the envelope bytes, and the
// bytes its signature and HMAC cover.
type vector struct {
	Name            string   `json:"name"`
	Seed            uint64   `json:"seed"`
	Protocol        Protocol `json:"protocol"`
	From            string   `json:"from"`
	Ed25519         bool     `json:"ed25519_signer"`
	To              []string `json:"to"`
	RSAOnly         []string `json:"rsa_only_recipients,omitempty"`
	Destination     string   `json:"destination,omitempty"`
	AmpType         int32    `json:"amp_type"`
	AmpVersion      int32    `json:"amp_version"`
	SequenceNumber  *uint32  `json:"sequence_number,omitempty"`
	SentMillis      int64    `json:"sent_ms"`
	HashDestination bool     `json:"hash_destination,omitempty"`
	Payload         hexBytes `json:"payload"`
	Envelope        hexBytes `json:"envelope"`
	Signed          hexBytes `json:"signed"`
	MACed           hexBytes `json:"maced,omitempty"`
}

type hexBytes []byte

func (h hexBytes) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h)), nil }
func (h *hexBytes) UnmarshalText(b []byte) error {
	d, err := hex.DecodeString(string(b))
	*h = d
	return err
}

const vectorsFile = "testdata/vectors.json"

func u32(v uint32) *uint32 { return &v }

func vectorInputs() []*vector {
	sent := testNow.Add(-time.Minute).UnixMilli()
	return []*vector{
		{Name: "simple-v1-rsa", Seed: 101, Protocol: SimpleV1, From: "alice", To: []string{"bob"},
			AmpType: 1, AmpVersion: 1, SentMillis: sent, Payload: []byte("hello, Bob")},
		{Name: "simple-v2-rsa", Seed: 102, Protocol: SimpleV2, From: "alice", To: []string{"bob"},
			AmpType: 1, AmpVersion: 2, SequenceNumber: u32(7), SentMillis: sent, Payload: []byte("v2 payload")},
		{Name: "simple-v2-rsa-zero-fields", Seed: 103, Protocol: SimpleV2, From: "alice", To: []string{"bob"},
			AmpType: 0, AmpVersion: 0, SequenceNumber: u32(0), SentMillis: sent, Payload: []byte{}},
		{Name: "simple-v2-rsa-hashed-destination", Seed: 104, Protocol: SimpleV2, From: "alice", To: []string{"bob"},
			AmpType: 1, AmpVersion: 2, SentMillis: sent, HashDestination: true, Payload: []byte("hidden")},
		{Name: "simple-v3-ed25519-hpke", Seed: 105, Protocol: SimpleV3, From: "alice", Ed25519: true, To: []string{"bob"},
			AmpType: 1, AmpVersion: 2, SequenceNumber: u32(1), SentMillis: sent, Payload: []byte("post-quantum hello")},
		{Name: "auth-v1-rsa", Seed: 106, Protocol: AuthV1, From: "alice", To: []string{"bob"},
			AmpType: 3, AmpVersion: 1, SentMillis: sent, Payload: []byte("receipt")},
		{Name: "auth-v1-ed25519", Seed: 107, Protocol: AuthV1, From: "alice", Ed25519: true, To: []string{"bob"},
			AmpType: 2, AmpVersion: 1, SequenceNumber: u32(0), SentMillis: sent, Payload: []byte("notification")},
		{Name: "group-v1-ed25519-mixed-slots", Seed: 108, Protocol: GroupV1, From: "alice", Ed25519: true,
			To: []string{"bob", "carol"}, RSAOnly: []string{"carol"}, Destination: "friends@example.org",
			AmpType: 1, AmpVersion: 2, SentMillis: sent, Payload: []byte("to the group")},
		{Name: "group-v1-rsa", Seed: 109, Protocol: GroupV1, From: "bob",
			To: []string{"alice", "carol"}, Destination: "bob@example.org",
			AmpType: 1, AmpVersion: 1, SentMillis: sent, Payload: []byte("to my devices")},
		{Name: "group-v2-ed25519-mixed-slots", Seed: 110, Protocol: GroupV2, From: "alice", Ed25519: true,
			To: []string{"bob", "carol"}, RSAOnly: []string{"carol"}, Destination: "friends@example.org",
			AmpType: 1, AmpVersion: 2, SentMillis: sent, Payload: []byte("slots signed")},
	}
}

func (f *fixture) byName(name string) *party {
	switch name {
	case "alice":
		return f.Alice
	case "bob":
		return f.Bob
	case "carol":
		return f.Carol
	}
	return nil
}

// seal produces v's envelope from its inputs with v's random seed.
func (v *vector) seal(t *testing.T, f *fixture) []byte {
	t.Helper()
	cryptotest.SetGlobalRandom(t, v.Seed)
	from := f.byName(v.From).rsaSender()
	if v.Ed25519 {
		from = f.byName(v.From).edSender()
		from.CertificateVersion = "ed25519"
	}
	out := &Outgoing{
		AmpType: v.AmpType, AmpVersion: v.AmpVersion, SequenceNumber: v.SequenceNumber,
		Sent: time.UnixMilli(v.SentMillis), HashDestination: v.HashDestination, Payload: v.Payload,
	}
	var to []*Recipient
	for _, n := range v.To {
		r := f.byName(n).recipient()
		for _, o := range v.RSAOnly {
			if o == n {
				r.KEM = nil
			}
		}
		to = append(to, r)
	}
	var env []byte
	var err error
	switch v.Protocol.Type {
	case TypeSimple:
		env, err = SealSimple(v.Protocol.Version, from, to[0], out)
	case TypeAuth:
		env, err = SealAuth(from, to[0].Address, out)
	case TypeGroup:
		env, err = sealGroup(v.Protocol, from, v.Destination, to, out)
	}
	if err != nil {
		t.Fatalf("seal %s: %v", v.Name, err)
	}
	return env
}

// covered recomputes the signed and MACed bytes of env as r sees them.
func covered(t *testing.T, env []byte, r *Receiver) (signed, maced []byte) {
	t.Helper()
	p, payload, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	var m proto.Message
	var v virtualFields
	var sigList, macList = authSig, authSig[:0]
	v.protocol = p
	switch p.Type {
	case TypeSimple:
		s := new(wire.STPSimple)
		mustUnmarshal(t, payload, s)
		sv, _ := simpleSuite(p.Version)
		v.encKey, v.macKey, err = unwrapKeys(sv.key, r, s.EasymBlock)
		if err != nil {
			t.Fatal(err)
		}
		v.payload, err = openPayload(sv.sym, v.encKey, s.Iv, s.EsymBlock)
		sigList, macList = simpleLists(p.Version)
		m = s
	case TypeGroup:
		g := new(wire.STPSimpleGroup)
		mustUnmarshal(t, payload, g)
		for _, k := range g.KeySlots {
			if k.GetRecipient() == r.Addresses[0] {
				v.encKey, v.macKey, err = unwrapKeys(k.GetVersion(), r, k.SealedKey)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		v.payload, err = openPayload(SymAESGCM, v.encKey, g.Iv, g.EsymBlock)
		sigList, macList = groupLists(p.Version)
		m = g
	case TypeAuth:
		s := new(wire.STPSimple)
		mustUnmarshal(t, payload, s)
		v.payload = s.Payload
		m = s
	}
	if err != nil {
		t.Fatal(err)
	}
	if signed, err = coveredBytes(m, sigList, &v); err != nil {
		t.Fatal(err)
	}
	if len(macList) > 0 {
		if maced, err = coveredBytes(m, macList, &v); err != nil {
			t.Fatal(err)
		}
	}
	return signed, maced
}

func mustUnmarshal(t *testing.T, b []byte, m proto.Message) {
	t.Helper()
	if err := proto.Unmarshal(b, m); err != nil {
		t.Fatal(err)
	}
}

// TestVectors opens every recorded envelope, checks the covered bytes,
// re-encodes the STP message byte for byte and re-seals it from its inputs
// and seed. With -update it regenerates the keys and the vectors.
func TestVectors(t *testing.T) {
	if *update {
		generateFixture(t)
		fixtureOnce = sync.Once{} // other tests may have loaded the old keys
		f := loadFixture(t)
		var vs []*vector
		for _, v := range vectorInputs() {
			v.Envelope = v.seal(t, f)
			v.Signed, v.MACed = covered(t, v.Envelope, f.receiver(f.byName(v.To[0])))
			vs = append(vs, v)
		}
		writeJSON(t, vectorsFile, vs)
	}
	f := loadFixture(t)
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []*vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != len(vectorInputs()) {
		t.Fatalf("%d vectors on file, %d defined: run with -update", len(vs), len(vectorInputs()))
	}
	d := NewDispatcher()
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			for _, to := range v.To {
				r := f.receiver(f.byName(to))
				r.Groups = []string{v.Destination} // the recipients are members
				m, err := d.Open(v.Envelope, r)
				if err != nil {
					t.Fatalf("open for %s: %v", to, err)
				}
				if m.Protocol != v.Protocol || m.AmpType != v.AmpType || m.AmpVersion != v.AmpVersion ||
					!bytes.Equal(m.Payload, v.Payload) || m.Sent.UnixMilli() != v.SentMillis ||
					m.Sender != f.byName(v.From).Address || !equalSeq(m.SequenceNumber, v.SequenceNumber) {
					t.Errorf("opened %+v, want the vector's inputs", m)
				}
			}
			signed, maced := covered(t, v.Envelope, f.receiver(f.byName(v.To[0])))
			if !bytes.Equal(signed, v.Signed) || !bytes.Equal(maced, v.MACed) {
				t.Errorf("covered bytes differ:\nsigned %x\nwant   %x\nmaced %x\nwant  %x", signed, v.Signed, maced, v.MACed)
			}
			reencode(t, v.Envelope)
			if again := v.seal(t, f); !bytes.Equal(again, v.Envelope) {
				t.Errorf("re-sealing with seed %d gives different bytes", v.Seed)
			}
		})
	}
}

// reencode checks parse → marshal gives the same envelope and STP bytes.
func reencode(t *testing.T, env []byte) {
	t.Helper()
	var e wire.MessageProtocolEnvelope
	mustUnmarshal(t, env, &e)
	b, err := deterministic.Marshal(&e)
	if err != nil || !bytes.Equal(b, env) {
		t.Errorf("envelope does not re-encode to the same bytes (%v)", err)
	}
	var m proto.Message = new(wire.STPSimple)
	if e.GetProtocolType() == TypeGroup {
		m = new(wire.STPSimpleGroup)
	}
	mustUnmarshal(t, e.Payload, m)
	if b, err = deterministic.Marshal(m); err != nil || !bytes.Equal(b, e.Payload) {
		t.Errorf("STP message does not re-encode to the same bytes (%v)", err)
	}
}

func equalSeq(a, b *uint32) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func TestSMIMEUnsupported(t *testing.T) {
	f := loadFixture(t)
	env, err := MarshalEnvelope(SMIMEv1, []byte("MIME-Version: 1.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDispatcher().Open(env, f.receiver(f.Bob)); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("S/MIME: got %v, want ErrUnsupported", err)
	}
}
