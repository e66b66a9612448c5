package federation

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/api"
)

func TestParseOriginID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		err  error
	}{{"1", 1, nil}, {" 42 ", 42, nil}, {"", 0, ErrNoHeader}, {"0", 0, ErrBadHeader}, {"-3", 0, ErrBadHeader}, {"+3", 0, ErrBadHeader},
		{"9223372036854775807", 9223372036854775807, nil}, {"99999999999999999999", 0, ErrBadHeader}, {"1e3", 0, ErrBadHeader}} {
		n, err := ParseOriginID(tc.in)
		if n != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("ParseOriginID(%q) = %d, %v; want %d, %v", tc.in, n, err, tc.want, tc.err)
		}
	}
}

func TestParseCert(t *testing.T) {
	der := []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	if got, err := ParseCert(EncodeCert(der)); err != nil || string(got) != string(der) {
		t.Fatalf("round trip: %x %v", got, err)
	}
	for _, in := range []string{"", "***", strings.Repeat("A", 4*maxCertLen)} {
		if _, err := ParseCert(in); err == nil {
			t.Errorf("ParseCert(%.20q) accepted", in)
		}
	}
}

func TestDecodeAnswer(t *testing.T) {
	var bs []api.Bundle
	if err := DecodeAnswer(200, []byte(`[{"device":"bravo@b.example/b1","cert":"AQ=="}]`), &bs); err != nil || len(bs) != 1 {
		t.Fatalf("ok answer: %v %v", bs, err)
	}
	err := DecodeAnswer(403, []byte(`{"error":{"code":"not_allowed","message":"no"}}`), &bs)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeNotAllowed || ae.Status != 403 {
		t.Fatalf("refusal: %v", err)
	}
	if err := DecodeAnswer(502, []byte(`<html>`), &bs); !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("proxy page: %v", err)
	}
	if err := DecodeAnswer(200, []byte(`{`), &bs); !errors.Is(err, ErrBadAnswer) {
		t.Fatalf("truncated: %v", err)
	}
}

func FuzzParseOriginID(f *testing.F) {
	for _, s := range []string{"1", "42", "", "0", "-1", "+1", "9223372036854775807", "9223372036854775808", " 7 ", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseOriginID(s)
		if err == nil && n <= 0 {
			t.Fatalf("%q gave %d", s, n)
		}
		if err != nil && !errors.Is(err, ErrNoHeader) && !errors.Is(err, ErrBadHeader) {
			t.Fatalf("%q: unexpected error %v", s, err)
		}
	})
}

func FuzzParseCert(f *testing.F) {
	for _, s := range []string{"", "MAMCAQE=", "====", "A", "MAMCAQE", strings.Repeat("QUFB", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		der, err := ParseCert(s)
		if err == nil && (len(der) == 0 || len(der) > maxCertLen) {
			t.Fatalf("%q gave %d bytes", s, len(der))
		}
	})
}

// FuzzVerifyDevice feeds arbitrary bytes as a forwarded device certificate
// to the check against a pinned CA: a specific error, never a panic, and
// nothing but a certificate of the pinned CA passes.
func FuzzVerifyDevice(f *testing.F) {
	st := openStore(f)
	b := newTestCA(f, "b.example")
	pin(f, st, "b.example", b)
	pins := &Pins{St: st}
	f.Add(b.device(f, "bravo@b.example/b1"))
	f.Add(newTestCA(f, "b.example").device(f, "bravo@b.example/b1"))
	f.Add([]byte{0x30, 0x82, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		d, cert, err := pins.VerifyDevice(context.Background(), "b.example", der)
		if err == nil && (cert == nil || cert.CheckSignatureFrom(b.ca.Cert) != nil || d.Account.Domain != "b.example") {
			t.Fatalf("accepted %v", d)
		}
	})
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(200, []byte(`[{"device":"bravo@b.example/b1","cert":"AQ=="}]`))
	f.Add(403, []byte(`{"error":{"code":"not_allowed","message":"no"}}`))
	f.Add(200, []byte(`{"user":"bravo@b.example","devices":[]}`))
	f.Add(502, []byte(`<html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		var bs []api.Bundle
		DecodeAnswer(status, body, &bs)
		var c api.Contact
		DecodeAnswer(status, body, &c)
	})
}
