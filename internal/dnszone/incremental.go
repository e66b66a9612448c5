package dnszone

import (
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// applyLocked publishes new entry records at the given owner names (type →
// records; an empty map: none left) by patching the current snapshot
// rather than rebuilding it: the changed RRsets are signed, names that
// come into existence (with their empty non-terminal ancestors, RFC 5155
// §7.1) are inserted into the sorted NSEC3 chain and names that cease to
// exist are taken out; the NSEC3 records of changed names and of their
// chain predecessors, whose "next hashed owner" changed, are signed
// again, and so is the SOA with a new serial. Everything else keeps its
// records and signatures, shared with the previous snapshot, which queries
// may still be reading. A large change is cheaper as a rebuild. z.mu must
// be held. On error nothing changes.
func (z *Zone) applyLocked(changes map[string]map[uint16][]dns.RR) error {
	old := z.view.Load()
	o := z.origin
	for name := range changes {
		if name == o || !dns.IsSubDomain(o, name) {
			return z.rebuildWith(changes)
		}
	}
	if len(changes) > len(old.nodes)/8+64 {
		return z.rebuildWith(changes)
	}
	now := z.now()
	serial := uint32(now.Unix())
	if serial <= z.serial {
		serial = z.serial + 1
	}
	nodes := maps.Clone(old.nodes)
	childDelta := map[string]int{}
	kids := func(name string) int { return z.children[name] + childDelta[name] }
	parent := func(name string) string {
		i, _ := dns.NextLabel(name, 0)
		return name[i:]
	}
	var created, gone []string
	touched := map[string]bool{} // names whose NSEC3 record must be made again
	for name, et := range changes {
		data := map[uint16][]dns.RR{}
		for t, rrs := range z.endpoints[name] {
			data[t] = rrs
		}
		for t, rrs := range et {
			data[t] = append(slices.Clone(data[t]), rrs...)
		}
		prev := nodes[name]
		if len(data) == 0 {
			if prev == nil || len(prev.types) == 0 {
				continue
			}
			if kids(name) > 0 {
				// Names below remain: it stays as an empty non-terminal.
				nodes[name] = &node{sets: map[uint16]*rrset{}}
				touched[name] = true
				continue
			}
			for n := name; ; {
				delete(nodes, n)
				gone = append(gone, n)
				p := parent(n)
				childDelta[p]--
				if pn := nodes[p]; p == o || pn == nil || kids(p) > 0 || len(pn.types) > 0 {
					break
				}
				n = p
			}
			continue
		}
		nn := &node{sets: make(map[uint16]*rrset, len(data))}
		for t, rrs := range data {
			set, err := z.signedSet(old, name, t, rrs, now)
			if err != nil {
				return err
			}
			nn.sets[t] = set
			nn.types = append(nn.types, t)
		}
		slices.Sort(nn.types)
		if prev == nil {
			created = append(created, name)
			for n := name; ; {
				p := parent(n)
				childDelta[p]++
				if _, ok := nodes[p]; ok || p == o {
					break
				}
				nodes[p] = &node{sets: map[uint16]*rrset{}}
				created = append(created, p)
				n = p
			}
		}
		if prev == nil || !slices.Equal(prev.types, nn.types) {
			touched[name] = true
		} else {
			nn.nsec3 = prev.nsec3
		}
		nodes[name] = nn
	}

	// Net effect on the chain: a name removed and made again in the same
	// change (an empty non-terminal whose last child moved) stays, with a
	// new node.
	hashes := map[string]string{}
	hashOf := func(name string) string {
		if h, ok := z.hashes[name]; ok {
			return h
		}
		if h, ok := hashes[name]; ok {
			return h
		}
		h := dns.HashName(name, dns.SHA1, 0, "")
		hashes[name] = h
		return h
	}
	var added []link
	removed := map[string]bool{} // hashes
	for _, n := range slices.Concat(created, gone) {
		inOld, inNew := old.nodes[n] != nil, nodes[n] != nil
		switch {
		case inOld && !inNew:
			removed[hashOf(n)] = true
		case !inOld && inNew && !slices.ContainsFunc(added, func(l link) bool { return l.name == n }):
			added = append(added, link{hash: hashOf(n), name: n})
			touched[n] = true
		case inOld && inNew:
			touched[n] = true
		}
	}
	slices.SortFunc(added, func(a, b link) int { return strings.Compare(a.hash, b.hash) })
	chain := old.chain
	if len(added) > 0 || len(removed) > 0 {
		chain = spliceChain(old.chain, added, removed)
		// The predecessor of a name that came or went points elsewhere now.
		pred := func(hash string) string {
			k := sort.Search(len(chain), func(k int) bool { return chain[k].hash >= hash })
			return chain[(k-1+len(chain))%len(chain)].name
		}
		for _, l := range added {
			touched[pred(l.hash)] = true
		}
		for h := range removed {
			touched[pred(h)] = true
		}
	} else if len(touched) > 0 {
		chain = slices.Clone(chain)
	}

	// The SOA: a new serial tells secondaries and caches the zone changed.
	apex := old.nodes[o]
	soa := dns.Copy(apex.sets[dns.TypeSOA].rrs[0]).(*dns.SOA)
	soa.Serial = serial
	soaSet, err := z.signedSet(old, o, dns.TypeSOA, []dns.RR{soa}, now)
	if err != nil {
		return err
	}
	na := &node{sets: maps.Clone(apex.sets), types: apex.types, nsec3: apex.nsec3}
	na.sets[dns.TypeSOA] = soaSet
	nodes[o] = na

	for name := range touched {
		n := nodes[name]
		if n == nil {
			continue
		}
		h := hashOf(name)
		i := sort.Search(len(chain), func(i int) bool { return chain[i].hash >= h })
		set, err := z.nsec3Set(old, chain, i, n.types, now)
		if err != nil {
			return err
		}
		nn := *n
		nn.nsec3 = set
		nodes[name] = &nn
		chain[i].set = set
	}

	v := &view{origin: o, nodes: nodes, chain: chain, soa: soaSet}
	// Commit.
	for name, et := range changes {
		if len(et) == 0 {
			delete(z.entries, name)
		} else {
			if z.entries == nil {
				z.entries = map[string]map[uint16][]dns.RR{}
			}
			z.entries[name] = et
		}
	}
	for p, d := range childDelta {
		if c := z.children[p] + d; c > 0 {
			z.children[p] = c
		} else {
			delete(z.children, p)
		}
	}
	for n, h := range hashes {
		if nodes[n] != nil {
			z.hashes[n] = h
		}
	}
	for _, n := range gone {
		if nodes[n] == nil {
			delete(z.hashes, n)
		}
	}
	z.serial = serial
	z.patches++
	z.view.Store(v)
	return nil
}

// rebuildWith publishes entry records by a full rebuild.
func (z *Zone) rebuildWith(changes map[string]map[uint16][]dns.RR) error {
	prev := maps.Clone(z.entries)
	if z.entries == nil {
		z.entries = map[string]map[uint16][]dns.RR{}
	}
	for name, et := range changes {
		if len(et) == 0 {
			delete(z.entries, name)
		} else {
			z.entries[name] = et
		}
	}
	if err := z.rebuildLocked(); err != nil {
		z.entries = prev
		return err
	}
	return nil
}

// nsec3Set is the signed NSEC3 record of chain link i (RFC 5155 §3): the
// next hashed owner and the types at the name, RRSIG with them when there
// are any.
func (z *Zone) nsec3Set(old *view, chain []link, i int, types []uint16, now time.Time) (*rrset, error) {
	bitmap := slices.Clone(types)
	if len(bitmap) > 0 {
		bitmap = append(bitmap, dns.TypeRRSIG)
		slices.Sort(bitmap)
	}
	owner := strings.ToLower(chain[i].hash) + "." + z.origin
	rr := &dns.NSEC3{Hdr: hdr(owner, dns.TypeNSEC3, NegativeTTL), Hash: dns.SHA1, Flags: 0, Iterations: 0,
		SaltLength: 0, Salt: "", HashLength: 20, NextDomain: chain[(i+1)%len(chain)].hash, TypeBitMap: bitmap}
	return z.signedSet(old, owner, dns.TypeNSEC3, []dns.RR{rr}, now)
}

// spliceChain returns chain with the links added (sorted by hash) put in
// and the hashes removed taken out, copying the runs in between whole.
func spliceChain(chain, added []link, removed map[string]bool) []link {
	type edit struct {
		at  int   // position in chain
		add *link // or nil: remove chain[at]
	}
	edits := make([]edit, 0, len(added)+len(removed))
	for i := range added {
		at, _ := slices.BinarySearchFunc(chain, added[i].hash, func(l link, h string) int { return strings.Compare(l.hash, h) })
		edits = append(edits, edit{at, &added[i]})
	}
	for h := range removed {
		if at, ok := slices.BinarySearchFunc(chain, h, func(l link, h string) int { return strings.Compare(l.hash, h) }); ok {
			edits = append(edits, edit{at: at})
		}
	}
	// At one position, insertions (hashes below chain[at]) come before
	// the removal of chain[at].
	slices.SortFunc(edits, func(a, b edit) int {
		if a.at != b.at {
			return a.at - b.at
		}
		if (a.add == nil) != (b.add == nil) {
			if a.add == nil {
				return 1
			}
			return -1
		}
		if a.add != nil {
			return strings.Compare(a.add.hash, b.add.hash)
		}
		return 0
	})
	out := make([]link, 0, len(chain)+len(added)-len(removed))
	from := 0
	for _, e := range edits {
		out = append(out, chain[from:e.at]...)
		from = e.at
		if e.add != nil {
			out = append(out, *e.add)
		} else {
			from = e.at + 1
		}
	}
	return append(out, chain[from:]...)
}
