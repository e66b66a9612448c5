// Package dnsval is a validating DNS stub for clients and nodes: it asks a
// server (the zone's authoritative server or any resolver) and accepts an
// answer only after checking its DNSSEC chain itself from a trust anchor
// for the zone, a DS or DNSKEY record (RFC 4033, RFC 4034, RFC 4035 §5).
// The AD bit of a resolver is never trusted: queries set CD so a resolver
// hands over the records and their signatures, and every RRset is checked
// against the zone's DNSKEY RRset, itself checked against the anchor.
// "No such name" and "no such type" are accepted only with NSEC3 proofs
// (RFC 5155 §8) or NSEC proofs (RFC 4035 §5.4).
//
// Names are validated within an anchored zone; delegations below it are
// not followed (the directory zone has none).
package dnsval

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Errors callers branch on.
var (
	ErrBogus    = errors.New("DNSSEC validation failed")
	ErrNoData   = errors.New("no record of this type (proven by DNSSEC)")
	ErrNXDomain = errors.New("no such name (proven by DNSSEC)")
	ErrNoAnchor = errors.New("no trust anchor covers this name")
)

func bogus(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBogus, fmt.Sprintf(format, a...))
}

// maxIterations caps NSEC3 iterations (RFC 9276 §3.2: validators may
// refuse high counts, which cost them hashing work).
const maxIterations = 100

// VerifyRRset checks that one of sigs is a valid signature over rrset by
// one of keys, made by zone, and valid at now (RFC 4035 §5.3). Wildcard
// expansions (fewer RRSIG labels than the owner's) are refused: proving them
// needs an extra proof that the directory zone never requires.
func VerifyRRset(rrset []dns.RR, sigs []*dns.RRSIG, keys []*dns.DNSKEY, zone string, now time.Time) error {
	if len(rrset) == 0 {
		return bogus("empty RRset")
	}
	h0 := rrset[0].Header()
	owner := dns.CanonicalName(h0.Name)
	if !dns.IsSubDomain(zone, owner) {
		return bogus("%s is outside zone %s", owner, zone)
	}
	for _, rr := range rrset[1:] {
		h := rr.Header()
		if dns.CanonicalName(h.Name) != owner || h.Rrtype != h0.Rrtype || h.Class != h0.Class {
			return bogus("records of %s do not form one RRset", owner)
		}
	}
	if len(sigs) == 0 {
		return bogus("%s %s is not signed", owner, dns.TypeToString[h0.Rrtype])
	}
	var last error
	for _, s := range sigs {
		if s.TypeCovered != h0.Rrtype || dns.CanonicalName(s.Hdr.Name) != owner {
			continue
		}
		if dns.CanonicalName(s.SignerName) != zone {
			last = bogus("%s signed by %s, not by zone %s", owner, s.SignerName, zone)
			continue
		}
		if int(s.Labels) != dns.CountLabel(owner) {
			last = bogus("%s: wildcard expansion refused", owner)
			continue
		}
		if !s.ValidityPeriod(now) {
			last = bogus("%s %s: signature outside its validity period (%s to %s)", owner, dns.TypeToString[h0.Rrtype],
				dns.TimeToString(s.Inception), dns.TimeToString(s.Expiration))
			continue
		}
		for _, k := range keys {
			// RFC 5011 §3: a revoked key signs nothing.
			if k.KeyTag() != s.KeyTag || k.Algorithm != s.Algorithm || k.Flags&dns.REVOKE != 0 {
				continue
			}
			if err := s.Verify(k, rrset); err == nil {
				return nil
			} else {
				last = bogus("%s %s: signature by key %d: %v", owner, dns.TypeToString[h0.Rrtype], s.KeyTag, err)
			}
		}
		if last == nil {
			last = bogus("%s %s: no DNSKEY with tag %d", owner, dns.TypeToString[h0.Rrtype], s.KeyTag)
		}
	}
	if last == nil {
		last = bogus("%s %s: no signature covers it", owner, dns.TypeToString[h0.Rrtype])
	}
	return last
}

// VerifyDNSKEYs checks a zone's DNSKEY RRset from anchors (DS or DNSKEY
// records of zone): some key of the set must match an anchor and sign the
// set (RFC 4035 §5.2). It returns the keys, which then validate the zone.
func VerifyDNSKEYs(set []dns.RR, sigs []*dns.RRSIG, anchors []dns.RR, zone string, now time.Time) ([]*dns.DNSKEY, error) {
	var keys, anchored []*dns.DNSKEY
	for _, rr := range set {
		k, ok := rr.(*dns.DNSKEY)
		if !ok {
			return nil, bogus("DNSKEY RRset holds a %s", dns.TypeToString[rr.Header().Rrtype])
		}
		keys = append(keys, k)
		if k.Flags&dns.ZONE == 0 || k.Flags&dns.REVOKE != 0 || k.Protocol != 3 {
			continue
		}
		for _, a := range anchors {
			if dns.CanonicalName(a.Header().Name) != zone {
				continue
			}
			switch a := a.(type) {
			case *dns.DS:
				if a.KeyTag != k.KeyTag() || a.Algorithm != k.Algorithm {
					continue
				}
				// RFC 4509 / RFC 4034 §5.1.4: the digest over owner and
				// RDATA; SHA-1 anchors are not accepted (RFC 8624 §3.3).
				if a.DigestType != dns.SHA256 && a.DigestType != dns.SHA384 {
					continue
				}
				if d := k.ToDS(a.DigestType); d != nil && strings.EqualFold(d.Digest, a.Digest) {
					anchored = append(anchored, k)
				}
			case *dns.DNSKEY:
				if a.Algorithm == k.Algorithm && a.PublicKey == k.PublicKey && a.Flags&^dns.REVOKE == k.Flags {
					anchored = append(anchored, k)
				}
			}
		}
	}
	if len(anchored) == 0 {
		return nil, bogus("no key of %s matches the trust anchor", zone)
	}
	if err := VerifyRRset(set, sigs, anchored, zone, now); err != nil {
		return nil, err
	}
	return keys, nil
}

// signed is an RRset with its signatures, from a message section.
type signed struct {
	rrs  []dns.RR
	sigs []*dns.RRSIG
}

type setKey struct {
	name string
	t    uint16
}

// group splits a section into RRsets with their covering RRSIGs.
func group(section []dns.RR) map[setKey]*signed {
	out := map[setKey]*signed{}
	get := func(k setKey) *signed {
		s := out[k]
		if s == nil {
			s = &signed{}
			out[k] = s
		}
		return s
	}
	for _, rr := range section {
		h := rr.Header()
		if h.Class != dns.ClassINET {
			continue
		}
		name := dns.CanonicalName(h.Name)
		if s, ok := rr.(*dns.RRSIG); ok {
			get(setKey{name, s.TypeCovered}).sigs = append(get(setKey{name, s.TypeCovered}).sigs, s)
			continue
		}
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		s := get(setKey{name, h.Rrtype})
		s.rrs = append(s.rrs, rr)
	}
	return out
}

// Validate checks a response m to the question qname/qtype (qname inside
// zone) with the zone's validated keys. It returns the answer RRset, or
// ErrNoData / ErrNXDomain when the response proves the absence, or ErrBogus.
func Validate(m *dns.Msg, qname string, qtype uint16, zone string, keys []*dns.DNSKEY, now time.Time) ([]dns.RR, error) {
	qname = dns.CanonicalName(qname)
	zone = dns.CanonicalName(zone)
	if !dns.IsSubDomain(zone, qname) {
		return nil, fmt.Errorf("%s: %w", qname, ErrNoAnchor)
	}
	switch m.Rcode {
	case dns.RcodeSuccess:
		ans := group(m.Answer)
		if s := ans[setKey{qname, qtype}]; s != nil && len(s.rrs) > 0 {
			if err := VerifyRRset(s.rrs, s.sigs, keys, zone, now); err != nil {
				return nil, err
			}
			return s.rrs, nil
		}
		if s := ans[setKey{qname, dns.TypeCNAME}]; s != nil && len(s.rrs) > 0 {
			return nil, bogus("%s is an alias (CNAME), which the directory does not use", qname)
		}
		if err := proveNoData(group(m.Ns), qname, qtype, zone, keys, now); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s %s: %w", qname, dns.TypeToString[qtype], ErrNoData)
	case dns.RcodeNameError:
		if err := proveNXDomain(group(m.Ns), qname, zone, keys, now); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", qname, ErrNXDomain)
	default:
		return nil, fmt.Errorf("%s %s: server answered %s", qname, dns.TypeToString[qtype], dns.RcodeToString[m.Rcode])
	}
}

// nsec3 is a validated NSEC3 record with its owner hash decoded.
type nsec3 struct {
	rr    *dns.NSEC3
	owner string // base32hex, upper case
}

// validNSEC3 returns the NSEC3 records of the authority section whose
// signatures check, all with the same parameters.
func validNSEC3(auth map[setKey]*signed, zone string, keys []*dns.DNSKEY, now time.Time) ([]nsec3, error) {
	var out []nsec3
	for k, s := range auth {
		if k.t != dns.TypeNSEC3 || len(s.rrs) == 0 {
			continue
		}
		// RFC 5155 §8.2: the owner is one hash label directly under the zone.
		label, rest, ok := strings.Cut(k.name, ".")
		if !ok || rest != zone || len(label) != 32 {
			continue
		}
		if len(s.rrs) != 1 {
			return nil, bogus("%d NSEC3 records at %s", len(s.rrs), k.name)
		}
		if err := VerifyRRset(s.rrs, s.sigs, keys, zone, now); err != nil {
			return nil, err
		}
		rr := s.rrs[0].(*dns.NSEC3)
		if rr.Hash != dns.SHA1 {
			return nil, bogus("NSEC3 hash algorithm %d unknown", rr.Hash)
		}
		if rr.Iterations > maxIterations {
			return nil, bogus("NSEC3 with %d iterations refused", rr.Iterations)
		}
		if len(out) > 0 && (out[0].rr.Iterations != rr.Iterations || !strings.EqualFold(out[0].rr.Salt, rr.Salt)) {
			return nil, bogus("NSEC3 records with mixed parameters")
		}
		out = append(out, nsec3{rr: rr, owner: strings.ToUpper(label)})
	}
	return out, nil
}

func (n nsec3) hash(name string) string {
	return dns.HashName(name, n.rr.Hash, n.rr.Iterations, n.rr.Salt)
}

func (n nsec3) matches(name string) bool { return n.owner == n.hash(name) }

// covers reports whether name's hash falls strictly between the owner and
// the next hashed owner, the last interval wrapping around (RFC 5155 §1.3).
func (n nsec3) covers(name string) bool {
	h, next := n.hash(name), strings.ToUpper(n.rr.NextDomain)
	if n.owner < next {
		return n.owner < h && h < next
	}
	return h > n.owner || h < next // the last record, or the only one
}

func hasType(types []uint16, t uint16) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

func proveNoData(auth map[setKey]*signed, qname string, qtype uint16, zone string, keys []*dns.DNSKEY, now time.Time) error {
	if nsec, ok := auth[setKey{qname, dns.TypeNSEC}]; ok && len(nsec.rrs) == 1 {
		// RFC 4035 §5.4: an NSEC at the name without the type.
		if err := VerifyRRset(nsec.rrs, nsec.sigs, keys, zone, now); err != nil {
			return err
		}
		n := nsec.rrs[0].(*dns.NSEC)
		if hasType(n.TypeBitMap, qtype) || hasType(n.TypeBitMap, dns.TypeCNAME) {
			return bogus("NSEC at %s lists %s: the empty answer is false", qname, dns.TypeToString[qtype])
		}
		return nil
	}
	ns, err := validNSEC3(auth, zone, keys, now)
	if err != nil {
		return err
	}
	// RFC 5155 §8.5: an NSEC3 matching QNAME whose bitmap has neither
	// QTYPE nor CNAME.
	for _, n := range ns {
		if n.matches(qname) {
			if hasType(n.rr.TypeBitMap, qtype) || hasType(n.rr.TypeBitMap, dns.TypeCNAME) {
				return bogus("NSEC3 of %s lists %s: the empty answer is false", qname, dns.TypeToString[qtype])
			}
			return nil
		}
	}
	return bogus("no record and no NSEC3 proof that %s %s does not exist", qname, dns.TypeToString[qtype])
}

// proveNXDomain checks the closest encloser proof (RFC 5155 §8.4 and §7.2.1)
// or the NSEC proof (RFC 4035 §5.4).
func proveNXDomain(auth map[setKey]*signed, qname, zone string, keys []*dns.DNSKEY, now time.Time) error {
	if err := proveNXDomainNSEC(auth, qname, zone, keys, now); err == nil {
		return nil
	} else if !errors.Is(err, errNoNSEC) {
		return err
	}
	ns, err := validNSEC3(auth, zone, keys, now)
	if err != nil {
		return err
	}
	if len(ns) == 0 {
		return bogus("NXDOMAIN for %s without a proof", qname)
	}
	next := qname
	for ce := qname; ce != zone; {
		i, end := dns.NextLabel(ce, 0)
		if end {
			break
		}
		next, ce = ce, ce[i:]
		var match *nsec3
		for i := range ns {
			if ns[i].matches(ce) {
				match = &ns[i]
				break
			}
		}
		if match == nil {
			continue
		}
		// RFC 5155 §8.3: the closest encloser is no delegation point or
		// DNAME, or the name would lie in another zone.
		tb := match.rr.TypeBitMap
		if hasType(tb, dns.TypeDNAME) || (hasType(tb, dns.TypeNS) && !hasType(tb, dns.TypeSOA)) {
			return bogus("closest encloser %s is a delegation", ce)
		}
		var nextOK, wildOK bool
		for _, n := range ns {
			// An opt-out span proves nothing about names in it.
			if n.rr.Flags&1 == 0 && n.covers(next) {
				nextOK = true
			}
			if n.covers("*." + ce) {
				wildOK = true
			}
		}
		if !nextOK {
			return bogus("no NSEC3 covers the next closer name %s", next)
		}
		if !wildOK {
			return bogus("no NSEC3 covers the wildcard *.%s", ce)
		}
		return nil
	}
	return bogus("no closest encloser proof for %s", qname)
}

var errNoNSEC = errors.New("no NSEC records")

// proveNXDomainNSEC: an NSEC covering qname and one covering the wildcard
// at the closest encloser (RFC 4035 §5.4).
func proveNXDomainNSEC(auth map[setKey]*signed, qname, zone string, keys []*dns.DNSKEY, now time.Time) error {
	var nsecs []*dns.NSEC
	for k, s := range auth {
		if k.t != dns.TypeNSEC || len(s.rrs) != 1 {
			continue
		}
		if err := VerifyRRset(s.rrs, s.sigs, keys, zone, now); err != nil {
			return err
		}
		nsecs = append(nsecs, s.rrs[0].(*dns.NSEC))
	}
	if len(nsecs) == 0 {
		return errNoNSEC
	}
	var cover *dns.NSEC
	for _, n := range nsecs {
		if nsecCovers(n, qname) {
			cover = n
		}
	}
	if cover == nil {
		return bogus("no NSEC covers %s", qname)
	}
	// The closest encloser is the longest common ancestor of qname and
	// the names around the gap.
	ce := zone
	for _, other := range []string{cover.Hdr.Name, cover.NextDomain} {
		if l := dns.CompareDomainName(qname, other); l > dns.CountLabel(ce) {
			idx := dns.Split(qname)
			ce = qname[idx[len(idx)-l]:]
		}
	}
	for _, n := range nsecs {
		if nsecCovers(n, "*."+ce) {
			return nil
		}
	}
	return bogus("no NSEC covers the wildcard *.%s", ce)
}

// nsecCovers reports owner < name < next in canonical order (RFC 4034 §6.1).
func nsecCovers(n *dns.NSEC, name string) bool {
	o, nx := dns.CanonicalName(n.Hdr.Name), dns.CanonicalName(n.NextDomain)
	if canonicalLess(o, nx) {
		return canonicalLess(o, name) && canonicalLess(name, nx)
	}
	return canonicalLess(o, name) || canonicalLess(name, nx)
}

// canonicalLess orders names label by label from the right (RFC 4034 §6.1).
func canonicalLess(a, b string) bool {
	la, lb := dns.SplitDomainName(strings.ToLower(a)), dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}
