package client

import (
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestWarnings(t *testing.T) {
	res := sip.NewResponse(200, "OK")
	for _, v := range []string{
		`399 example.org "not delivered to a@example.org/phone: cannot receive encrypted messages"`,
		`399 example.org "quoted \"word\""`,
		`301 example.org "incompatible network address type"`, // not the cluster's notice
		`399 example.org unquoted`,
	} {
		res.AppendHeader(sip.NewHeader("Warning", v))
	}
	got := warnings(res)
	want := []string{"not delivered to a@example.org/phone: cannot receive encrypted messages", `quoted "word"`}
	if !slices.Equal(got, want) {
		t.Fatalf("warnings %q, want %q", got, want)
	}
}

func TestAssertedDevice(t *testing.T) {
	for _, c := range []struct{ pai, want string }{
		{"<sip:alice@example.org;gr=linphone>", "linphone"},
		{"<sip:alice@example.org>", "sip"},
		{"<sip:alice@example.org;gr=Bad Name>", "sip"},
		{"", "sip"},
	} {
		req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "b", Host: "example.org"})
		if c.pai != "" {
			req.AppendHeader(sip.NewHeader("P-Asserted-Identity", c.pai))
		}
		if got := assertedDevice(req); got != c.want {
			t.Errorf("%q: %q, want %q", c.pai, got, c.want)
		}
	}
}

// FuzzPhoneHeaders: the Warning and P-Asserted-Identity values the
// cluster sends are read without a panic, and what comes out is bounded by
// what went in.
func FuzzPhoneHeaders(f *testing.F) {
	for _, s := range []string{`399 example.org "not delivered to a@example.org/p: x"`, `399 h "\"\\"`, `<sip:a@b;gr=dev>`, `;gr=`, `399 h "`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		res := sip.NewResponse(200, "OK")
		res.AppendHeader(sip.NewHeader("Warning", v))
		for _, w := range warnings(res) {
			if len(w) > len(v) {
				t.Fatalf("warning text %q longer than the header %q", w, v)
			}
		}
		req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "b", Host: "example.org"})
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", v))
		if d := assertedDevice(req); d != "sip" && !strings.Contains(v, ";gr="+d) {
			t.Fatalf("device %q not from %q", d, v)
		}
	})
}
