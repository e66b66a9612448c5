package ident

import (
	"errors"
	"net/url"
	"testing"
)

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"alpha@example.org/laptop", "alpha@example.org/laptop", true},
		{"Alpha@Example.ORG/Phone", "alpha@example.org/phone", true},
		{"alpha@localhost/d1", "alpha@localhost/d1", true},
		{"alpha@example.org", "", false},
		{"@example.org/x", "", false},
		{"alpha@/x", "", false},
		{"alpha@exa mple.org/x", "", false},
		{"alpha@example.org/", "", false},
		{"alpha@example.org/a/b", "", false},
		{"al pha@example.org/x", "", false},
		{"alpha@-bad.org/x", "", false},
	} {
		d, err := ParseDevice(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParseDevice(%q) err=%v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseDevice(%q) err=%v not ErrInvalid", tc.in, err)
		}
		if tc.ok && d.String() != tc.want {
			t.Errorf("ParseDevice(%q)=%q want %q", tc.in, d, tc.want)
		}
		if tc.ok {
			back, err := FromURIs([]*url.URL{d.URI()})
			if err != nil || back != d {
				t.Errorf("URI round trip of %q: %v %v", d, back, err)
			}
		}
	}
}

func FuzzParseDevice(f *testing.F) {
	f.Add("alpha@example.org/laptop")
	f.Add("a@b/c")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDevice(s)
		if err != nil {
			return
		}
		again, err := ParseDevice(d.String())
		if err != nil || again != d {
			t.Fatalf("not stable: %q -> %q (%v)", s, d, err)
		}
	})
}
