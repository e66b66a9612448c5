package client

import (
	"errors"
	"testing"

	"github.com/phonex/phonex/internal/dnsval"
)

const testDS = "a.example.\t3600\tIN\tDS\t12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"

func TestDirAnchorRecords(t *testing.T) {
	const other = "b.example.\t3600\tIN\tDS\t12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	const sha1 = "a.example.\t3600\tIN\tDS\t12345 13 1 0123456789ABCDEF0123456789ABCDEF01234567"
	for _, c := range []struct {
		zone string
		ds   []string
		n    int
		want error
	}{
		{"a.example.", []string{testDS}, 1, nil},
		{"a.example", []string{testDS, testDS}, 2, nil},
		{"A.Example.", []string{testDS}, 1, nil},
		{"a.example.", nil, 0, dnsval.ErrNoAnchors},
		{"a.example.", []string{other}, 0, nil},                                // another zone's DS
		{"a.example.", []string{sha1}, 0, nil},                                 // SHA-1 digest
		{"a.example.", []string{"a.example. IN DNSKEY 257 3 13 AAAA"}, 0, nil}, // not a DS
		{"a.example.", []string{"garbage"}, 0, nil},
		{"", []string{testDS}, 0, nil},
	} {
		rrs, err := DirAnchor{Zone: c.zone, DS: c.ds}.records()
		switch {
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s %q: %v, want %v", c.zone, c.ds, err, c.want)
		case c.n == 0 && err == nil:
			t.Errorf("%s %q accepted", c.zone, c.ds)
		case c.n > 0 && (err != nil || len(rrs) != c.n):
			t.Errorf("%s %q: %d records, %v", c.zone, c.ds, len(rrs), err)
		}
	}
}

// FuzzDirAnchor: what a node sends as its anchor is network input.
func FuzzDirAnchor(f *testing.F) {
	f.Add("a.example.", testDS)
	f.Add("a.example.", "a.example. IN DNSKEY 257 3 13 AAAA")
	f.Add("", "")
	f.Add("\x00", "a.example. 3600 IN DS 1 13 2 00")
	f.Fuzz(func(t *testing.T, zone, ds string) {
		rrs, err := DirAnchor{Zone: zone, DS: []string{ds}}.records()
		if err == nil && len(rrs) != 1 {
			t.Fatalf("%d records and no error", len(rrs))
		}
	})
}
