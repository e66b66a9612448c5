package dnsval

import (
	"errors"
	"testing"
)

const testDS = "a.example.\t3600\tIN\tDS\t12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

func TestParseAnchors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want error
	}{
		{testDS + "\n", 1, nil},
		{"# the zone\n; also a comment\n\n" + testDS + "\n" + testDS, 2, nil},
		{"", 0, ErrNoAnchors},
		{"# nothing\n", 0, ErrNoAnchors},
		{"a.example. 3600 IN A 192.0.2.1\n", 0, nil},
		{"not a record\n", 0, nil},
		{"()\n", 0, nil}, // dns.NewRR returns no record and no error
		{testDS + "\n( )\n", 0, nil},
	} {
		rrs, err := ParseAnchors([]byte(tc.in))
		switch {
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%q: %v, want %v", tc.in, err, tc.want)
		case tc.want == nil && tc.n == 0 && err == nil:
			t.Errorf("%q accepted", tc.in)
		case tc.n > 0 && (err != nil || len(rrs) != tc.n):
			t.Errorf("%q: %d records, %v", tc.in, len(rrs), err)
		}
	}
}

func FuzzParseAnchors(f *testing.F) {
	for _, s := range []string{testDS, "# x\n" + testDS, "a. IN DNSKEY 257 3 13 AAAA", "a. IN A 1.2.3.4", "", "\x00", "()"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rrs, err := ParseAnchors(b)
		if err == nil && len(rrs) == 0 {
			t.Fatal("no anchors and no error")
		}
	})
}
