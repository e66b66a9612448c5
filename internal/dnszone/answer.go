package dnszone

import (
	"strings"

	"github.com/miekg/dns"
)

// view is an immutable snapshot of the signed zone; queries read it
// without locks.
type view struct {
	origin string
	nodes  *nameMap // every owner name, empty non-terminals included
	chain  *chain   // the NSEC3 chain in hash order
	soa    *rrset
	cache  replyCache // packed UDP replies (fastpath.go)
}

type node struct {
	sets  map[uint16]*rrset
	types []uint16 // sorted
	nsec3 *rrset   // the NSEC3 record of this name
}

type rrset struct {
	rrs  []dns.RR
	sigs []dns.RR
}

type link struct {
	hash string // base32hex, upper case
	name string // the owner name hashed
	set  *rrset
}

func (v *view) lookupSet(name string, t uint16) *rrset {
	if t == dns.TypeNSEC3 {
		i, _ := strings.CutSuffix(name, "."+v.origin)
		if l := v.chain.find(strings.ToUpper(i)); l != nil {
			return l.set
		}
		return nil
	}
	if n := v.nodes.get(name); n != nil {
		return n.sets[t]
	}
	return nil
}

// covering returns the NSEC3 RRset whose interval holds hash (RFC 5155
// §1.3 "covers"): the last owner before it, wrapping to the last link.
func (v *view) covering(hash string) *rrset {
	return v.chain.at(v.chain.prev(v.chain.search(hash))).set
}

// answer fills m, a reply to a query for name (lower case) and qtype, with
// the zone's data; do asks for DNSSEC records (RFC 3225).
func (v *view) answer(m *dns.Msg, name string, qtype uint16, do bool) {
	m.Authoritative = true
	n := v.nodes.get(name)
	if n == nil {
		v.nxdomain(m, name, do)
		return
	}
	var set *rrset
	switch qtype {
	case dns.TypeANY:
		// RFC 8482 §4.2: answer ANY with one RRset, not all of them.
		if len(n.types) > 0 {
			set = n.sets[n.types[0]]
		}
	case dns.TypeRRSIG:
		if len(n.types) > 0 {
			for _, t := range n.types {
				m.Answer = append(m.Answer, n.sets[t].sigs...)
			}
			return
		}
	default:
		set = n.sets[qtype]
	}
	if set != nil {
		m.Answer = append(m.Answer, set.rrs...)
		if do {
			m.Answer = append(m.Answer, set.sigs...)
		}
		return
	}
	// No data (RFC 5155 §7.2.3): the NSEC3 matching the name shows which
	// types exist.
	v.addSOA(m, do)
	if do {
		m.Ns = append(m.Ns, n.nsec3.rrs...)
		m.Ns = append(m.Ns, n.nsec3.sigs...)
	}
}

func (v *view) addSOA(m *dns.Msg, do bool) {
	m.Ns = append(m.Ns, v.soa.rrs...)
	if do {
		m.Ns = append(m.Ns, v.soa.sigs...)
	}
}

// nxdomain answers for a name that does not exist with the closest encloser
// proof (RFC 5155 §7.2.2): the NSEC3 matching the closest encloser, the one
// covering the next closer name and the one covering the wildcard at the
// closest encloser.
func (v *view) nxdomain(m *dns.Msg, name string, do bool) {
	m.Rcode = dns.RcodeNameError
	v.addSOA(m, do)
	if !do {
		return
	}
	next, ce := name, name
	for {
		i, end := dns.NextLabel(ce, 0)
		if end {
			ce = v.origin
			break
		}
		next, ce = ce, ce[i:]
		if v.nodes.get(ce) != nil {
			break
		}
	}
	sets := []*rrset{
		v.nodes.get(ce).nsec3,
		v.covering(dns.HashName(next, dns.SHA1, 0, "")),
		v.covering(dns.HashName("*."+ce, dns.SHA1, 0, "")),
	}
	for i, s := range sets {
		if i > 0 && (s == sets[0] || (i == 2 && s == sets[1])) {
			continue
		}
		m.Ns = append(m.Ns, s.rrs...)
		m.Ns = append(m.Ns, s.sigs...)
	}
}
