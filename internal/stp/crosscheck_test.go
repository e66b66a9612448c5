package stp

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/wire"
)

const (
	crosscheckInputs = "testdata/crosscheck_inputs.json"
	crosscheckOutput = "testdata/stp_crosscheck.json"
)

// crosscheckInput is what testdata/stp_crosscheck.py needs beyond keys.json:
// each party's HPKE private key in its serialised form (the 32-byte seed of
// the MLKEM768-X25519 KEM), derived here from the fixture's IKM.
type crosscheckInput struct {
	KEMSeed map[string]string `json:"kem_seed"`
}

func crosscheckInputsOf(t *testing.T, f *fixture) crosscheckInput {
	t.Helper()
	in := crosscheckInput{KEMSeed: map[string]string{}}
	for name, p := range map[string]*party{"alice": f.Alice, "bob": f.Bob, "carol": f.Carol} {
		b, err := p.kemKey.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		in.KEMSeed[name] = hex.EncodeToString(b)
	}
	return in
}

// TestCrosscheckInputs keeps crosscheck_inputs.json in step with keys.json
// (-update rewrites it).
func TestCrosscheckInputs(t *testing.T) {
	f := loadFixture(t)
	want := crosscheckInputsOf(t, f)
	if *update {
		writeJSON(t, crosscheckInputs, want)
	}
	b, err := os.ReadFile(crosscheckInputs)
	if err != nil {
		t.Fatal(err)
	}
	var got crosscheckInput
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	for name, seed := range want.KEMSeed {
		if got.KEMSeed[name] != seed {
			t.Fatalf("%s is stale: run with -update, then testdata/stp_crosscheck.py", crosscheckInputs)
		}
	}
}

type crosscheck struct {
	Vectors []struct {
		Name        string   `json:"name"`
		Payload     hexBytes `json:"payload"`
		Signed      hexBytes `json:"signed"`
		MACed       hexBytes `json:"maced"`
		EncKey      hexBytes `json:"enc_key"`
		MACKey      hexBytes `json:"mac_key"`
		SignatureOK bool     `json:"signature_ok"`
		MACOK       bool     `json:"mac_ok"`
	} `json:"vectors"`
	BuiltV3 struct {
		Envelope hexBytes `json:"envelope"`
		Payload  hexBytes `json:"payload"`
		SentMS   int64    `json:"sent_ms"`
		Sender   string   `json:"sender"`
		To       string   `json:"to"`
	} `json:"built_v3"`
}

// TestVectorsCrosscheck compares the recorded vectors with an independent
// computation: testdata/stp_crosscheck.py (Python, the cryptography
// package) parsed every envelope, opened its key block (RSA-OAEP, or HPKE
// with ML-KEM-768+X25519 written out per RFC 9180), rebuilt the signed and
// MACed bytes from the documented field lists, and checked the signature,
// the HMAC and the AES-GCM payload. It also built an STPSimple v3 message,
// which this implementation must open.
func TestVectorsCrosscheck(t *testing.T) {
	f := loadFixture(t)
	b, err := os.ReadFile(crosscheckOutput)
	if err != nil {
		t.Fatal(err)
	}
	var cc crosscheck
	if err := json.Unmarshal(b, &cc); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs []*vector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(cc.Vectors) != len(vs) {
		t.Fatalf("%d cross-checked vectors, %d recorded: rerun testdata/stp_crosscheck.py", len(cc.Vectors), len(vs))
	}
	for i, v := range vs {
		c := cc.Vectors[i]
		if c.Name != v.Name {
			t.Fatalf("cross-check %d is %q, vector %q: rerun the script", i, c.Name, v.Name)
		}
		if !c.SignatureOK || !c.MACOK {
			t.Errorf("%s: Python found signature ok=%v, HMAC ok=%v", v.Name, c.SignatureOK, c.MACOK)
		}
		if !bytes.Equal(c.Payload, v.Payload) || !bytes.Equal(c.Signed, v.Signed) || !bytes.Equal(c.MACed, v.MACed) {
			t.Errorf("%s: the independent payload, signed or MACed bytes differ from the vector", v.Name)
		}
		if len(c.EncKey) > 0 {
			enc, mac := f.vectorKeys(t, v)
			if !bytes.Equal(enc, c.EncKey) || !bytes.Equal(mac, c.MACKey) {
				t.Errorf("%s: the key block opens to other keys in Python", v.Name)
			}
		}
	}
	bv := cc.BuiltV3
	r := f.receiver(f.byName(bv.To))
	r.Now = func() time.Time { return time.UnixMilli(bv.SentMS).Add(time.Minute) }
	m, err := NewDispatcher().Open(bv.Envelope, r)
	if err != nil {
		t.Fatalf("the Python-built STPSimple v3 message does not open: %v", err)
	}
	if m.Protocol != SimpleV3 || m.Sender != bv.Sender || !bytes.Equal(m.Payload, bv.Payload) {
		t.Fatalf("opened %v from %s with %q, want v3 from %s with %q", m.Protocol, m.Sender, m.Payload, bv.Sender, bv.Payload)
	}
}

// vectorKeys opens v's key block (or its first recipient's key slot) here.
func (f *fixture) vectorKeys(t *testing.T, v *vector) (encKey, macKey []byte) {
	t.Helper()
	r := f.receiver(f.byName(v.To[0]))
	p, payload, err := ParseEnvelope(v.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	switch p.Type {
	case TypeSimple:
		var m wire.STPSimple
		mustUnmarshal(t, payload, &m)
		s, _ := simpleSuite(p.Version)
		encKey, macKey, err = unwrapKeys(s.key, r, m.EasymBlock)
	case TypeGroup:
		var m wire.STPSimpleGroup
		mustUnmarshal(t, payload, &m)
		for _, k := range m.KeySlots {
			if k.GetRecipient() == r.Addresses[0] {
				encKey, macKey, err = unwrapKeys(k.GetVersion(), r, k.SealedKey)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return encKey, macKey
}
