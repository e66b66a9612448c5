package proxy

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/ident"
)

func TestAssertedDevice(t *testing.T) {
	for in, want := range map[string]string{
		"<sip:bravo@b.example;gr=b1>":   "bravo@b.example/b1",
		"sip:bravo@b.example;x=1;gr=b2": "bravo@b.example/b2",
		"<sip:bravo@b.example>":         "",
		"":                              "",
	} {
		res := sip.NewResponse(200, "OK")
		if in != "" {
			res.AppendHeader(sip.NewHeader("P-Asserted-Identity", in))
		}
		if got := assertedDevice(res); got != want {
			t.Errorf("assertedDevice(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzAssertedDevice: what a peer's answer asserts about the answering
// device is read without a panic, and used only when it names a device.
func FuzzAssertedDevice(f *testing.F) {
	for _, s := range []string{"<sip:bravo@b.example;gr=b1>", "sip:;gr=", "<<>>;gr=;gr=x", "sip:a@b;gr=c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		res := sip.NewResponse(200, "OK")
		res.AppendHeader(sip.NewHeader("P-Asserted-Identity", v))
		if s := assertedDevice(res); s != "" {
			ident.ParseDevice(s) // the caller keeps it only if this succeeds
		}
	})
}
