package kdf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/cloudflare/circl/oprf"
)

type hexb []byte

func (h *hexb) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

func TestChainVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/chain.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Password   string
		Params     Params
		ScryptSalt hexb `json:"scrypt_salt"`
		Base       hexb
		Y          hexb
		Purposes   []struct {
			Purpose           Purpose
			Salt, Secret, Key hexb
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	base, err := Base([]byte(v.Password), v.Params, v.ScryptSalt)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(base, v.Base) {
		t.Fatalf("base = %x, want %x", base, v.Base)
	}
	for _, p := range v.Purposes {
		s, err := Secret(base, p.Purpose, p.Salt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s, p.Secret) {
			t.Errorf("%s secret = %x, want %x", p.Purpose, s, p.Secret)
		}
		k, err := Final(v.Y, s, p.Purpose)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(k, p.Key) {
			t.Errorf("%s key = %x, want %x", p.Purpose, k, p.Key)
		}
	}
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{DefaultParams, true},
		{Params{14, 8, 1}, true},
		{Params{10, 8, 1}, false},
		{Params{16, 1, 1}, false},
		{Params{30, 8, 1}, false},
		{Params{16, 8, 0}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.p, err)
		}
		if _, err := Base([]byte("pw"), tc.p, make([]byte, SaltSize)); !tc.ok && !errors.Is(err, ErrParams) {
			t.Errorf("Base accepted %+v", tc.p)
		}
	}
}

// RFC 9497 Appendix A.1.1 (ristretto255-SHA512, OPRF mode): the key derived
// from the test seed and the output for input 0x00.
func TestOPRFVector(t *testing.T) {
	seed := bytes.Repeat([]byte{0xa3}, 32)
	sk, err := oprf.DeriveKey(suite, oprf.BaseMode, seed, []byte("test key"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sk.MarshalBinary()
	if got := hex.EncodeToString(b); got != "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e" {
		t.Fatalf("skSm = %s", got)
	}
	out, err := (OPRFKey{sk}).FullEvaluate([]byte{0})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(out); got != "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6" {
		t.Fatalf("output = %s", got)
	}
}

func TestOPRFRoundTrip(t *testing.T) {
	k, err := NewOPRFKey()
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := k.MarshalBinary()
	k2, err := ParseOPRFKey(enc)
	if err != nil {
		t.Fatal(err)
	}
	bl, err := Blind([]byte("secret input"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := k2.Evaluate(bl.Message())
	if err != nil {
		t.Fatal(err)
	}
	y, err := bl.Finalize(ev)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := k.FullEvaluate([]byte("secret input"))
	if !bytes.Equal(y, want) {
		t.Fatal("blind evaluation differs from direct evaluation")
	}
	other, _ := NewOPRFKey()
	ev2, _ := other.Evaluate(bl.Message())
	if y2, _ := bl.Finalize(ev2); bytes.Equal(y2, y) {
		t.Fatal("another key gave the same output")
	}
}

func FuzzEvaluate(f *testing.F) {
	k, _ := NewOPRFKey()
	bl, _ := Blind([]byte("x"))
	f.Add(bl.Message())
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, msg []byte) {
		ev, err := k.Evaluate(msg)
		if err != nil {
			if !errors.Is(err, ErrOPRF) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if _, err := bl.Finalize(ev); err != nil {
			t.Fatalf("finalize of a valid evaluation: %v", err)
		}
	})
}

// BenchmarkGuess is the cost of one password guess for an attacker who holds
// both the stolen profile and the server's OPRF key: scrypt, PBKDF2, the OPRF
// and HKDF with the default parameters. Without the OPRF key no guess can be
// checked at all.
func BenchmarkGuess(b *testing.B) {
	k, _ := NewOPRFKey()
	salts := NewSalts()
	b.ReportAllocs()
	for b.Loop() {
		base, err := Base([]byte("guess"), DefaultParams, salts.Scrypt)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := Secret(base, Keystore, salts.Keystore)
		y, _ := k.FullEvaluate(s)
		if _, err := Final(y, s, Keystore); err != nil {
			b.Fatal(err)
		}
	}
}
