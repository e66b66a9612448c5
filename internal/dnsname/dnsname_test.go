package dnsname

import (
	"errors"
	"testing"

	"github.com/miekg/dns"
)

func TestENUM(t *testing.T) {
	for _, tc := range []struct {
		number, zone, want string
		err                error
	}{
		{"+421900", "example.com", "0.0.9.1.2.4.e164.example.com.", nil},
		{"+4219001234", "Example.COM.", "4.3.2.1.0.0.9.1.2.4.e164.example.com.", nil},
		{"421900", "example.com", "", ErrNumber},
		{"+0421", "example.com", "", ErrNumber},
		{"+42a", "example.com", "", ErrNumber},
		{"+1234567890123456", "example.com", "", ErrNumber},
	} {
		got, err := ENUM(tc.number, tc.zone)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("ENUM(%q) = %q, %v; want %q, %v", tc.number, got, err, tc.want, tc.err)
		}
	}
}

func TestSMIMEA(t *testing.T) {
	// RFC 8162 §3: the local part "hugh" hashes to this 28-octet prefix.
	got, err := SMIMEA("hugh@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := "c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6._smimecert.example.com."
	if got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	if _, err := SMIMEA("nodomain"); !errors.Is(err, ErrAddress) {
		t.Fatalf("err %v", err)
	}
}

func TestSIPURIFromNAPTR(t *testing.T) {
	for _, tc := range []struct {
		flags, service, re, want string
		ok                       bool
	}{
		{"u", "E2U+sip", "!^.*$!sip:alice@a.example!", "alice@a.example", true},
		{"U", "e2u+SIP", "!^.*$!sip:alice@a.example!", "alice@a.example", true},
		{"u", "E2U+mailto", "!^.*$!mailto:alice@a.example!", "", false},
		{"u", "E2U+sip", "!^(.*)$!sip:\\1@a.example!", "", false},
		{"u", "E2U+sip", "!^.*$!sip:alice!", "", false},
		{"u", "E2U+sip", "!", "", false},
	} {
		got, err := SIPURIFromNAPTR(&dns.NAPTR{Flags: tc.flags, Service: tc.service, Regexp: tc.re})
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: got %q, %v", tc.re, got, err)
		}
	}
}

func FuzzSIPURIFromNAPTR(f *testing.F) {
	f.Add("u", "E2U+sip", "!^.*$!sip:alice@a.example!")
	f.Add("u", "E2U+sip", "!!!")
	f.Fuzz(func(t *testing.T, flags, service, re string) {
		aor, err := SIPURIFromNAPTR(&dns.NAPTR{Flags: flags, Service: service, Regexp: re})
		if err == nil {
			if _, _, err := SplitAOR(aor); err != nil {
				t.Fatalf("accepted %q", aor)
			}
		}
	})
}
