package dnszone

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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
		// A list that cannot be published (a number for two addresses)
		// leaves the zone as it was.
		if step%7 == 3 {
			v := z.view.Load()
			bad := append(slices.Clone(entries), Entry{E164: entries[0].E164, AOR: "intruder@a.example"})
			if err := z.SetEntries(bad); !errors.Is(err, ErrEntry) || z.view.Load() != v {
				t.Fatalf("step %d: a conflicting list: %v (snapshot replaced: %v)", step, err, z.view.Load() != v)
			}
		}
		op := rng.IntN(6)
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
		case 5:
			// An address publishing keys without a number, there or gone.
			aor := fmt.Sprintf("keys%d@a.example", rng.IntN(3))
			if i := slices.IndexFunc(entries, func(e Entry) bool { return e.AOR == aor && e.E164 == "" }); i >= 0 {
				entries = slices.Delete(entries, i, i+1)
			} else {
				entries = append(entries, Entry{AOR: aor, Keys: []DeviceKey{{Device: "k", Cert: certs[rng.IntN(len(certs))]}}})
			}
		}
		patches := z.patches
		prev := z.view.Load()
		prevDump := dumpView(prev)
		if err := z.SetEntries(slices.Clone(entries)); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		// The previous snapshot, which queries in flight may be reading,
		// is untouched: the patch shares it, never writes it.
		if dumpView(prev) != prevDump {
			t.Fatalf("step %d: the patch changed the previous snapshot", step)
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
	if got.nodes.len() != want.nodes.len() {
		t.Fatalf("step %d: %d names, want %d", step, got.nodes.len(), want.nodes.len())
	}
	for name, w := range want.nodes.all() {
		g := got.nodes.get(name)
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
		if l := got.chain.find(dns.HashName(name, dns.SHA1, 0, "")); g.nsec3 == nil || l == nil || g.nsec3 != l.set {
			t.Fatalf("step %d: %s: its NSEC3 is not the chain's", step, name)
		}
	}
	gl, wl := slices.Collect(got.chain.all()), slices.Collect(want.chain.all())
	if len(gl) != len(wl) || got.chain.len() != len(gl) {
		t.Fatalf("step %d: chain of %d (%d counted), want %d", step, len(gl), got.chain.len(), len(wl))
	}
	for i := range wl {
		g, w := gl[i].set.rrs[0].(*dns.NSEC3), wl[i].set.rrs[0].(*dns.NSEC3)
		if gl[i].hash != wl[i].hash || g.NextDomain != w.NextDomain || !slices.Equal(g.TypeBitMap, w.TypeBitMap) || g.Hdr.Name != w.Hdr.Name {
			t.Fatalf("step %d: chain link %d: %s, want %s", step, i, g, w)
		}
	}
	for _, k := range got.chain.chunks {
		if len(k) == 0 || len(k) > 2*chainChunk {
			t.Fatalf("step %d: a chain chunk of %d links", step, len(k))
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
	for _, n := range v.nodes.all() {
		for _, s := range n.sets {
			check(s)
		}
	}
	for l := range v.chain.all() {
		check(l.set)
	}
}

// dumpView is every record of a snapshot with its place (NSEC3 record of
// a node, chain link), sorted.
func dumpView(v *view) string {
	var lines []string
	for name, n := range v.nodes.all() {
		for _, s := range n.sets {
			for _, rr := range append(slices.Clone(s.rrs), s.sigs...) {
				lines = append(lines, name+" "+rr.String())
			}
		}
		if n.nsec3 != nil {
			lines = append(lines, name+" nsec3 "+n.nsec3.rrs[0].String()+n.nsec3.sigs[0].String())
		}
	}
	for l := range v.chain.all() {
		lines = append(lines, "link "+l.hash+" "+l.name+" "+l.set.rrs[0].String()+l.set.sigs[0].String())
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestChainSplice: splicing keeps the chain sorted and whole, splits
// grown chunks, drops emptied ones, and leaves the original untouched.
func TestChainSplice(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	hash := func() string { return fmt.Sprintf("%08X", rng.Uint32()) }
	var model []string
	for range 1000 {
		model = append(model, hash())
	}
	slices.Sort(model)
	model = slices.Compact(model)
	links := make([]link, len(model))
	for i, h := range model {
		links[i] = link{hash: h, name: h}
	}
	ch := newChain(links)
	for round := range 40 {
		before := slices.Collect(ch.all())
		var added []link
		removed := map[string]bool{}
		for range rng.IntN(300) {
			added = append(added, link{hash: hash()})
		}
		if round%10 == 9 {
			// Empty whole chunks.
			for _, l := range ch.chunks[rng.IntN(len(ch.chunks))] {
				removed[l.hash] = true
			}
		}
		for range rng.IntN(50) {
			removed[model[rng.IntN(len(model))]] = true
		}
		for _, l := range added {
			removed[l.hash] = false
			if slices.Contains(model, l.hash) {
				removed[l.hash] = true // re-added below
			}
		}
		next, _ := ch.splice(added, removed)
		var want []string
		for _, h := range model {
			if !removed[h] {
				want = append(want, h)
			}
		}
		for _, l := range added {
			want = append(want, l.hash)
		}
		slices.Sort(want)
		var got []string
		for l := range next.all() {
			got = append(got, l.hash)
		}
		if !slices.Equal(got, want) || next.len() != len(want) {
			t.Fatalf("round %d: chain of %d (%d counted), want %d", round, len(got), next.len(), len(want))
		}
		for _, k := range next.chunks {
			if len(k) == 0 || len(k) > 2*chainChunk {
				t.Fatalf("round %d: chunk of %d", round, len(k))
			}
		}
		if after := slices.Collect(ch.all()); len(after) != len(before) || !slices.EqualFunc(after, before, func(a, b *link) bool { return *a == *b }) {
			t.Fatalf("round %d: the original chain changed", round)
		}
		ch, model = next, want
	}
}
