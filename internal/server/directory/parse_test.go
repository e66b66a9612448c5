package directory

import (
	"encoding/json"
	"testing"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/e164"
)

// Every body the directory parses has a fuzz target: bad input gets an
// error, never a panic, and what is accepted is canonical.

func FuzzParseClaimBegin(f *testing.F) {
	for _, s := range []string{`{"number":"+420123456789"}`, `{"number":"+1 555"}`, `{}`, `{"number":1}`, `[]`, `{"number":"+420123456789"}{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseClaimBegin(b)
		if err == nil && e164.Canonical(n) != nil {
			t.Fatalf("accepted %q", n)
		}
	})
}

func FuzzParseClaimProve(f *testing.F) {
	for _, s := range []string{`{"code":"01234567"}`, `{"code":"0123456"}`, `{"code":"0123456٣"}`, `{"code":null}`, `x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseClaimProve(b)
		if err == nil && len(c) != codeDigits {
			t.Fatalf("accepted %q", c)
		}
	})
}

func FuzzParseLookup(f *testing.F) {
	for _, s := range []string{`{"number":"+420123456789"}`, `{"aor":"alpha@example.org"}`, `{"aor":"A@B.C"}`, `{"number":"+1","aor":"a@b"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := ParseLookup(b)
		if err != nil {
			return
		}
		if (q.Number == "") == (q.AOR == "") || (q.Number != "" && e164.Canonical(q.Number) != nil) {
			t.Fatalf("accepted %+v", q)
		}
	})
}

func FuzzParseDiscover(f *testing.F) {
	one, _ := json.Marshal(api.DirDiscover{Hashes: [][]byte{e164.Hash("+420123456789")}})
	for _, s := range []string{string(one), `{"hashes":[]}`, `{"hashes":["AAAA"]}`, `{"hashes":null}`, `{"hashes":[null]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		hs, err := ParseDiscover(b)
		if err != nil {
			return
		}
		if len(hs) == 0 || len(hs) > api.MaxDiscover {
			t.Fatalf("accepted %d hashes", len(hs))
		}
		for _, h := range hs {
			if len(h) != e164.HashLen {
				t.Fatalf("accepted a hash of %d bytes", len(h))
			}
		}
	})
}
