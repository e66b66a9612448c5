package dnszone

import (
	"maps"
	"slices"
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
	if len(changes) > old.nodes.len()/8+64 {
		return z.rebuildWith(changes)
	}
	now := z.now()
	serial := uint32(now.Unix())
	if serial <= z.serial {
		serial = z.serial + 1
	}
	nodes := editNames(old.nodes)
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
		prev := nodes.get(name)
		if len(data) == 0 {
			if prev == nil || len(prev.types) == 0 {
				continue
			}
			if kids(name) > 0 {
				// Names below remain: it stays as an empty non-terminal.
				nodes.set(name, &node{sets: map[uint16]*rrset{}})
				touched[name] = true
				continue
			}
			for n := name; ; {
				nodes.del(n)
				gone = append(gone, n)
				p := parent(n)
				childDelta[p]--
				if pn := nodes.get(p); p == o || pn == nil || kids(p) > 0 || len(pn.types) > 0 {
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
				if nodes.get(p) != nil || p == o {
					break
				}
				nodes.set(p, &node{sets: map[uint16]*rrset{}})
				created = append(created, p)
				n = p
			}
		}
		if prev == nil || !slices.Equal(prev.types, nn.types) {
			touched[name] = true
		} else {
			nn.nsec3 = prev.nsec3
		}
		nodes.set(name, nn)
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
		inOld, inNew := old.nodes.get(n) != nil, nodes.get(n) != nil
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
	ch, owned := old.chain, map[int]bool{}
	if len(added) > 0 || len(removed) > 0 {
		ch, owned = old.chain.splice(added, removed)
		// The predecessor of a name that came or went points elsewhere now.
		for _, l := range added {
			touched[ch.at(ch.prev(ch.search(l.hash))).name] = true
		}
		for h := range removed {
			touched[ch.at(ch.prev(ch.search(h))).name] = true
		}
	}
	if len(touched) > 0 && ch == old.chain {
		c := *old.chain
		c.chunks = slices.Clone(c.chunks)
		ch = &c
	}

	// The SOA: a new serial tells secondaries and caches the zone changed.
	apex := old.nodes.get(o)
	soa := dns.Copy(apex.sets[dns.TypeSOA].rrs[0]).(*dns.SOA)
	soa.Serial = serial
	soaSet, err := z.signedSet(old, o, dns.TypeSOA, []dns.RR{soa}, now)
	if err != nil {
		return err
	}
	na := &node{sets: maps.Clone(apex.sets), types: apex.types, nsec3: apex.nsec3}
	na.sets[dns.TypeSOA] = soaSet
	nodes.set(o, na)

	for name := range touched {
		n := nodes.get(name)
		if n == nil {
			continue
		}
		p := ch.search(hashOf(name))
		set, err := z.nsec3Set(old, ch.at(p).hash, ch.at(ch.next(p)).hash, n.types, now)
		if err != nil {
			return err
		}
		nn := *n
		nn.nsec3 = set
		nodes.set(name, &nn)
		// The chunk may be shared with the previous snapshot: copy it
		// before writing.
		if !owned[p.c] {
			ch.chunks[p.c] = slices.Clone(ch.chunks[p.c])
			owned[p.c] = true
		}
		ch.chunks[p.c][p.j].set = set
	}

	v := &view{origin: o, nodes: nodes.m, chain: ch, soa: soaSet}
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
		if nodes.get(n) != nil {
			z.hashes[n] = h
		}
	}
	for _, n := range gone {
		if nodes.get(n) == nil {
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

// nsec3Set is the signed NSEC3 record of the name hashed to hash (RFC
// 5155 §3): the next hashed owner and the types at the name, RRSIG with
// them when there are any.
func (z *Zone) nsec3Set(old *view, hash, next string, types []uint16, now time.Time) (*rrset, error) {
	bitmap := slices.Clone(types)
	if len(bitmap) > 0 {
		bitmap = append(bitmap, dns.TypeRRSIG)
		slices.Sort(bitmap)
	}
	owner := strings.ToLower(hash) + "." + z.origin
	rr := &dns.NSEC3{Hdr: hdr(owner, dns.TypeNSEC3, NegativeTTL), Hash: dns.SHA1, Flags: 0, Iterations: 0,
		SaltLength: 0, Salt: "", HashLength: 20, NextDomain: next, TypeBitMap: bitmap}
	return z.signedSet(old, owner, dns.TypeNSEC3, []dns.RR{rr}, now)
}
