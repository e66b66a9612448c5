package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/phonex/phonex/internal/kdf"
)

func validMeta() []byte {
	m := Meta{Version: 1, Server: "127.0.0.1:8443", CASHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Handle: "h", KDF: kdf.DefaultParams, Salts: kdf.NewSalts(), Check: make([]byte, 32)}
	m.Salts.Auth = nil
	b, _ := json.Marshal(m)
	return b
}

func TestParseMeta(t *testing.T) {
	if _, err := ParseMeta(validMeta()); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{``, `{}`, `{"version":2}`, `{"version":1,"kdf":{"log_n":10,"r":8,"p":1}}`, `[]`, `{"version":1,"extra":true}`} {
		if _, err := ParseMeta([]byte(bad)); !errors.Is(err, ErrTampered) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func FuzzParseMeta(f *testing.F) {
	f.Add(validMeta())
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMeta(b)
		if err != nil {
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("error not ErrTampered: %v", err)
			}
			return
		}
		enc := m.encode()
		back, err := ParseMeta(enc)
		if err != nil {
			t.Fatalf("re-encoded meta does not parse: %v", err)
		}
		if !reflect.DeepEqual(back, m) || !bytes.Equal(back.encode(), enc) {
			t.Fatalf("re-encoded meta parses to %+v, want %+v", back, m)
		}
	})
}
