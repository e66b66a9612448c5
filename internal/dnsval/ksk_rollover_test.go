package dnsval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/testpeer"
)

// walkKSKRollover takes a zone through a KSK rollover by double signature
// (RFC 6781 §4.1.2) and calls check at each step with the old and the new
// KSK's DS and whether each must validate the zone: the new key is
// published and signs the DNSKEY RRset beside the old one (either DS
// works), becomes the zone's KSK while the old one still signs (the
// parent switches its DS then; either works), and the old key goes (only
// the new DS works).
func walkKSKRollover(t *testing.T, f *fixture, check func(step string, oldDS, newDS *dns.DS, oldOK, newOK bool)) {
	t.Helper()
	oldKSK := f.zone.DS()
	next, err := dnszone.GenerateKey(origin, dnszone.ECDSAP256, true)
	if err != nil {
		t.Fatal(err)
	}
	newDS := next.DS()
	check("before", oldKSK, newDS, true, false)
	old := f.ksk
	if err := f.zone.SetKSKs(old, next); err != nil {
		t.Fatal(err)
	}
	check("new KSK pre-published", oldKSK, newDS, true, true)
	if err := f.zone.SetKSKs(next, old); err != nil {
		t.Fatal(err)
	}
	if got := f.zone.DS(); got.Digest != newDS.Digest {
		t.Fatalf("the zone's DS after activation is %s, want the new key's", got)
	}
	check("new KSK active, old still signing", oldKSK, newDS, true, true)
	if err := f.zone.SetKSKs(next, nil); err != nil {
		t.Fatal(err)
	}
	check("old KSK retired", oldKSK, newDS, false, true)
}

func TestKSKRollover(t *testing.T) {
	f := newFixture(t, dnszone.ECDSAP256)
	ctx := context.Background()
	walkKSKRollover(t, f, func(step string, oldDS, newDS *dns.DS, oldOK, newOK bool) {
		for _, c := range []struct {
			name string
			ds   *dns.DS
			ok   bool
		}{{"old DS", oldDS, oldOK}, {"new DS", newDS, newOK}} {
			r := &Resolver{Server: f.addr, Anchors: []dns.RR{c.ds}, Now: f.clock.Now}
			aor, err := r.SIPAddress(ctx, "+421900111222")
			switch {
			case c.ok && (err != nil || aor != "alice@a.example"):
				t.Errorf("%s: %s: %q %v", step, c.name, aor, err)
			case !c.ok && !errors.Is(err, ErrBogus):
				t.Errorf("%s: %s validated (%q %v), want bogus", step, c.name, aor, err)
			}
		}
		if n := len(f.zone.DSSet()); (oldOK && newOK) != (n == 2) {
			t.Errorf("%s: %d DS records in the set", step, n)
		}
	})
}

func TestKSKRolloverDelv(t *testing.T) {
	bin := testpeer.Require(t, "delv")
	naptr, _ := names(t)
	f := liveFixture(t, nil)
	walkKSKRollover(t, f, func(step string, oldDS, newDS *dns.DS, oldOK, newOK bool) {
		for i, ds := range []*dns.DS{oldDS, newDS} {
			ok := []bool{oldOK, newOK}[i]
			p := filepath.Join(t.TempDir(), "anchor.conf")
			text := fmt.Sprintf("trust-anchors {\n  %s static-ds %d %d %d \"%s\";\n};\n", origin, ds.KeyTag, ds.Algorithm, ds.DigestType, ds.Digest)
			if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			out := delv(t, bin, f.addr, p, naptr, "NAPTR")
			if got := strings.Contains(out, "; fully validated"); got != ok {
				t.Errorf("%s: delv with the %s DS: validated %v, want %v", step, []string{"old", "new"}[i], got, ok)
			}
		}
	})
}
