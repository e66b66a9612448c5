package ident

import (
	"errors"
	"net/url"
	"testing"
)

// FuzzParseAccount: account names arrive in API paths, SIP URIs and
// message headers. What parses is canonical: its String parses to itself.
func FuzzParseAccount(f *testing.F) {
	for _, s := range []string{"alpha@example.org", " Alpha@Example.ORG ", "a@localhost", "a.b_c-d@x-y.z", "a@b@c", "@x", "a@", "a@-x.org", "\u212aa@x.org"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAccount(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		again, err := ParseAccount(a.String())
		if err != nil || again != a {
			t.Fatalf("%q parses to %q, which parses to %q, %v", s, a, again, err)
		}
	})
}

// FuzzFromURIs: the device identity comes from the URI SAN of a certificate
// a peer presents. What is found re-encodes to a URI naming the same device.
func FuzzFromURIs(f *testing.F) {
	for _, s := range []string{"phonex:alpha@example.org/laptop", "phonex:Alpha@Example.org/Phone", "https://example.org/x", "phonex:a@b", "phonex://a@b/c"} {
		f.Add(s, "")
	}
	f.Add("phonex:a@b.org/one", "phonex:a@b.org/two")
	f.Fuzz(func(t *testing.T, s1, s2 string) {
		var uris []*url.URL
		for _, s := range []string{s1, s2} {
			if u, err := url.Parse(s); err == nil {
				uris = append(uris, u)
			}
		}
		d, err := FromURIs(uris)
		if err != nil {
			return
		}
		u, err := url.Parse(d.URI().String())
		if err != nil {
			t.Fatalf("URI of %q does not parse: %v", d, err)
		}
		again, err := FromURIs([]*url.URL{u})
		if err != nil || again != d {
			t.Fatalf("%q re-encodes to %s, which names %q, %v", d, u, again, err)
		}
	})
}
