package dnszone

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/dnsval"
)

// TestIncrementalMatchesRebuild publishes random changes (numbers added,
// removed, moved to another address, keys changed) one after another and
// checks after each that the patched snapshot equals a zone built from
// scratch with the same entries (names, RRsets, NSEC3 chain and bitmaps),
// that every signature verifies, and that answers for the changed names
// validate, positive and negative.
func TestIncrementalMatchesRebuild(t *testing.T) {
	now := t0
	z := testZone(t, &now)
	certs := [][]byte{testCert(t, "a"), testCert(t, "b"), testCert(t, "c")}
	rng := rand.New(rand.NewPCG(1, 2))
	number := func() string {
		// Few prefixes, so that names share empty non-terminals that come
		// and go with their last number.
		return fmt.Sprintf("+4219%d%d%05d", rng.IntN(3), rng.IntN(3), rng.IntN(40))
	}
	entry := func() Entry {
		e := Entry{E164: number(), AOR: fmt.Sprintf("u%d@a.example", rng.IntN(60))}
		if rng.IntN(3) == 0 {
			e.Keys = []DeviceKey{{Device: "d", Cert: certs[rng.IntN(len(certs))]}}
		}
		return e
	}
	var entries []Entry
	taken := map[string]bool{}
	add := func() {
		for {
			e := entry()
			if !taken[e.E164] {
				taken[e.E164] = true
				entries = append(entries, e)
				return
			}
		}
	}
	for range 200 {
		add()
	}
	if err := z.SetEntries(entries); err != nil {
		t.Fatal(err)
	}
	for step := range 50 {
		now = now.Add(time.Minute)
		before := z.Signatures()
		var probe []string
		op := rng.IntN(5)
		switch op {
		case 0:
			for range 1 + rng.IntN(3) {
				add()
				probe = append(probe, entries[len(entries)-1].E164)
			}
		case 1:
			for range 1 + rng.IntN(3) {
				i := rng.IntN(len(entries))
				probe = append(probe, entries[i].E164)
				delete(taken, entries[i].E164)
				entries = slices.Delete(entries, i, i+1)
			}
		case 2:
			i := rng.IntN(len(entries))
			entries[i].AOR = fmt.Sprintf("moved%d@a.example", step)
			probe = append(probe, entries[i].E164)
		case 3:
			i := rng.IntN(len(entries))
			entries[i].Keys = append(slices.Clone(entries[i].Keys), DeviceKey{Device: "e", Cert: certs[rng.IntN(len(certs))]})
		case 4:
			rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		}
		patches := z.patches
		if err := z.SetEntries(slices.Clone(entries)); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		// A shuffle changes nothing: no new snapshot, no signature.
		if want := uint64(1); op == 4 && z.patches != patches || op != 4 && z.patches-patches != want {
			t.Fatalf("step %d (op %d): %d snapshots patched", step, op, z.patches-patches)
		}
		if d := z.Signatures() - before; d > 40 {
			t.Errorf("step %d: %d signatures for a change of a few entries", step, d)
		}
		ref, err := New(Config{Origin: origin, KSK: z.ksk, ZSK: z.zsk, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := ref.SetEntries(entries); err != nil {
			t.Fatal(err)
		}
		compareViews(t, step, z.view.Load(), ref.view.Load())
		checkSignatures(t, step, z, now)
		for _, n := range probe {
			name, _ := dnsNameOf(n)
			m := z.Reply(query(name, dns.TypeNAPTR, true), false)
			_, err := dnsval.Validate(m, name, dns.TypeNAPTR, origin, z.DNSKEYs(), now)
			if taken[n] && err != nil || !taken[n] && !errors.Is(err, dnsval.ErrNXDomain) {
				t.Errorf("step %d: %s (published %v): %v", step, n, taken[n], err)
			}
		}
	}
}

func dnsNameOf(number string) (string, error) {
	d := []byte{}
	for i := len(number) - 1; i > 0; i-- {
		d = append(d, number[i], '.')
	}
	return string(d) + "e164." + origin, nil
}

func compareViews(t *testing.T, step int, got, want *view) {
	t.Helper()
	if len(got.nodes) != len(want.nodes) {
		t.Fatalf("step %d: %d names, want %d", step, len(got.nodes), len(want.nodes))
	}
	for name, w := range want.nodes {
		g := got.nodes[name]
		if g == nil {
			t.Fatalf("step %d: %s missing", step, name)
		}
		if !slices.Equal(g.types, w.types) {
			t.Fatalf("step %d: %s types %v, want %v", step, name, g.types, w.types)
		}
		for _, typ := range w.types {
			if typ != dns.TypeSOA && !sameRRs(g.sets[typ].rrs, w.sets[typ].rrs) {
				t.Fatalf("step %d: %s %s differs", step, name, dns.TypeToString[typ])
			}
		}
		if g.nsec3 == nil || g.nsec3 != got.chain[got.find(dns.HashName(name, dns.SHA1, 0, ""))].set {
			t.Fatalf("step %d: %s: its NSEC3 is not the chain's", step, name)
		}
	}
	if len(got.chain) != len(want.chain) {
		t.Fatalf("step %d: chain of %d, want %d", step, len(got.chain), len(want.chain))
	}
	for i := range want.chain {
		g, w := got.chain[i].set.rrs[0].(*dns.NSEC3), want.chain[i].set.rrs[0].(*dns.NSEC3)
		if got.chain[i].hash != want.chain[i].hash || g.NextDomain != w.NextDomain || !slices.Equal(g.TypeBitMap, w.TypeBitMap) || g.Hdr.Name != w.Hdr.Name {
			t.Fatalf("step %d: chain link %d: %s, want %s", step, i, g, w)
		}
	}
}

func checkSignatures(t *testing.T, step int, z *Zone, now time.Time) {
	t.Helper()
	v := z.view.Load()
	check := func(s *rrset) {
		key := z.zsk.DNSKEY
		if s.rrs[0].Header().Rrtype == dns.TypeDNSKEY {
			key = z.ksk.DNSKEY
		}
		for _, sig := range s.sigs {
			sig := sig.(*dns.RRSIG)
			if err := sig.Verify(key, s.rrs); err != nil || !sig.ValidityPeriod(now) {
				t.Fatalf("step %d: %s: signature %v (valid now: %v)", step, s.rrs[0], err, sig.ValidityPeriod(now))
			}
		}
	}
	for _, n := range v.nodes {
		for _, s := range n.sets {
			check(s)
		}
	}
	for _, l := range v.chain {
		check(l.set)
	}
}
