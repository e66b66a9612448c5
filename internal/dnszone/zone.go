// Package dnszone builds, signs and serves the cluster's DNSSEC-signed
// directory zone: SOA, NS and DNSKEY at the apex, ENUM NAPTR records
// (RFC 6116) under e164.<zone>, users' device certificates in SMIMEA
// records (RFC 8162) under _smimecert.<zone>, SRV records (RFC 2782) for the
// cluster's SIP, API and TURN endpoints and TLSA records (RFC 6698, DANE-TA)
// for its CA.
//
// Signing is online but ahead of time: every RRset and the NSEC3 chain
// (RFC 5155; RFC 9276 parameters: SHA-1, no extra iterations, empty salt,
// no opt-out) are signed when the zone changes or a signature nears expiry,
// never per query. A publication patches the signed snapshot, re-signing
// only the RRsets it changed and the NSEC3 records around them
// (incremental.go). Keys are a KSK signing the DNSKEY RRset and a ZSK
// signing the rest, ECDSA P-256 (algorithm 13) or Ed25519 (15); the ZSK
// rolls over by pre-publication (RFC 6781 §4.1.1.1), the KSK by double
// signature (RFC 6781 §4.1.2: a second KSK signing the DNSKEY RRset).
//
// The authoritative server (server.go) answers from an immutable snapshot
// of the signed zone and never logs queries.
package dnszone

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsname"
)

// TTLs of the zone's records.
const (
	DataTTL     = 300  // NAPTR, SMIMEA, SRV, TLSA, addresses: a change shows within five minutes
	DNSKEYTTL   = 3600 // the keys change only at rollovers
	NegativeTTL = 300  // SOA minimum: how long a "no such name" is cached (RFC 2308 §5)
)

// Errors callers branch on.
var (
	ErrOutsideZone = errors.New("name is outside the zone")
	ErrEntry       = errors.New("invalid directory entry")
	ErrTooEarly    = errors.New("too early for this rollover step")
	ErrRollover    = errors.New("no ZSK rollover in this state")
)

// Entry is one published directory entry: a phone number's SIP address and
// the device certificates of that address. E164 may be empty for an address
// that publishes keys only.
type Entry struct {
	E164 string // "+421..."
	AOR  string // "user@domain"
	Keys []DeviceKey
}

// DeviceKey is one device's certificate.
type DeviceKey struct {
	Device string // the device's name (not published: SMIMEA has no field for it)
	Cert   []byte // DER X.509 device certificate
}

// Endpoints are the cluster's listeners as host:port, published as SRV
// records, and its CA, published as TLSA records.
type Endpoints struct {
	SIP    []string // SIP over TLS: _sips._tcp
	API    []string // HTTPS API: _phonex-api._tcp
	TURN   []string // TURN over UDP and TCP: _turn._udp, _turn._tcp
	TURNS  []string // TURN over TLS: _turns._tcp
	CACert []byte   // DER: TLSA 2 0 1 at _port._tcp of each SIP, API and TURNS target
}

// Config sets up a zone.
type Config struct {
	Origin   string       // the zone's apex, e.g. "a.example."
	KSK, ZSK *Key         // signing keys
	NSAddrs  []netip.Addr // addresses of ns.<origin>, the zone's name server (glue)
	Validity time.Duration
	Resign   time.Duration // re-sign an RRset when less than this is left of its signature
	Now      func() time.Time

	// RateLimit is the UDP answers per second to one source network
	// (ratelimit.go); 0: no limit.
	RateLimit float64

	// A second KSK during a KSK rollover by double signature (RFC 6781
	// §4.1.2): published beside KSK and signing the DNSKEY RRset with it,
	// so that either key's DS validates the zone.
	KSK2 *Key

	// A ZSK rollover in progress, restored after a restart: a key
	// pre-published at Published, or the key ZSK replaced at Activated.
	ZSKNext   *Key
	Published time.Time
	ZSKOld    *Key
	Activated time.Time
}

// Defaults of Config.
const (
	DefaultValidity = 14 * 24 * time.Hour
	DefaultResign   = 7 * 24 * time.Hour
)

// Zone is a signed zone. Its methods are safe for concurrent use; queries
// read an immutable snapshot.
type Zone struct {
	origin   string
	nsAddrs  []netip.Addr
	validity time.Duration
	resign   time.Duration
	now      func() time.Time

	mu        sync.Mutex
	ksk       *Key
	ksk2      *Key // a second KSK during a KSK rollover, nil otherwise
	zsk       *Key // signs all RRsets but DNSKEY
	zskNext   *Key // published, not yet signing
	zskOld    *Key // no longer signing, still published
	published time.Time
	activated time.Time
	entries   map[string]map[uint16][]dns.RR // records from the directory entries, by owner
	endpoints map[string]map[uint16][]dns.RR
	serial    uint32
	signed    uint64            // signatures made, for tests and metrics
	patches   uint64            // snapshots patched rather than rebuilt (incremental.go)
	hashes    map[string]string // owner name → NSEC3 hash, kept across rebuilds
	children  map[string]int    // owner name → names directly below it in the view
	idx       entryIndex        // the entries last published (entries.go)

	kskTag, ksk2Tag, zskTag uint16 // of ksk, ksk2 and zsk, for the rebuild in progress

	view atomic.Pointer[view]
	rrl  *limiter // nil: no rate limit
}

// New builds and signs a zone with no entries and no endpoints.
func New(cfg Config) (*Zone, error) {
	if _, ok := dns.IsDomainName(cfg.Origin); !ok || cfg.Origin == "" {
		return nil, fmt.Errorf("zone origin %q: not a domain name", cfg.Origin)
	}
	if cfg.KSK == nil || cfg.ZSK == nil {
		return nil, errors.New("zone: a KSK and a ZSK are needed")
	}
	z := &Zone{origin: dns.CanonicalName(cfg.Origin), nsAddrs: cfg.NSAddrs, validity: cfg.Validity, resign: cfg.Resign, now: cfg.Now,
		ksk: cfg.KSK, zsk: cfg.ZSK}
	if z.validity == 0 {
		z.validity = DefaultValidity
	}
	if z.resign == 0 {
		z.resign = DefaultResign
	}
	if z.resign >= z.validity || z.validity < 2*time.Hour {
		return nil, fmt.Errorf("zone: signature validity %v must exceed 2h and the re-signing margin %v", z.validity, z.resign)
	}
	if z.now == nil {
		z.now = time.Now
	}
	for _, k := range []*Key{z.ksk, z.zsk} {
		if dns.CanonicalName(k.DNSKEY.Hdr.Name) != z.origin {
			return nil, fmt.Errorf("zone: key %s is not for %s", k, z.origin)
		}
	}
	if !z.ksk.IsKSK() || z.zsk.IsKSK() {
		return nil, errors.New("zone: the KSK needs the SEP flag (257), the ZSK must not have it (256)")
	}
	if err := z.checkKSK2(cfg.KSK, cfg.KSK2); err != nil {
		return nil, err
	}
	z.ksk2 = cfg.KSK2
	if cfg.ZSKNext != nil && cfg.ZSKOld != nil {
		return nil, fmt.Errorf("zone: %w (a key both pre-published and retiring)", ErrRollover)
	}
	for _, k := range []*Key{cfg.ZSKNext, cfg.ZSKOld} {
		if k != nil && (k.IsKSK() || dns.CanonicalName(k.DNSKEY.Hdr.Name) != z.origin || k.Tag() == z.zsk.Tag()) {
			return nil, fmt.Errorf("zone: rollover key %s: %w", k, ErrRollover)
		}
	}
	if cfg.RateLimit > 0 {
		z.rrl = newLimiter(cfg.RateLimit)
	}
	z.zskNext, z.published = cfg.ZSKNext, cfg.Published
	z.zskOld, z.activated = cfg.ZSKOld, cfg.Activated
	z.mu.Lock()
	defer z.mu.Unlock()
	if err := z.rebuildLocked(); err != nil {
		return nil, err
	}
	return z, nil
}

// Origin is the zone's apex, fully qualified and lower case.
func (z *Zone) Origin() string { return z.origin }

// Signatures is the number of signatures made so far.
func (z *Zone) Signatures() uint64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.signed
}

// Serial is the current SOA serial.
func (z *Zone) Serial() uint32 {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.serial
}

// DNSKEYs is the published DNSKEY RRset.
func (z *Zone) DNSKEYs() []*dns.DNSKEY {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []*dns.DNSKEY
	for _, k := range z.keysLocked() {
		out = append(out, dns.Copy(k.DNSKEY).(*dns.DNSKEY))
	}
	return out
}

// DS is the DS record of the KSK for the parent zone.
func (z *Zone) DS() *dns.DS {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.ksk.DS()
}

// DSSet is the DS record of every KSK in the DNSKEY RRset: one, or two
// during a KSK rollover. Devices and resolvers may trust any of them.
func (z *Zone) DSSet() []*dns.DS {
	z.mu.Lock()
	defer z.mu.Unlock()
	var out []*dns.DS
	for _, k := range z.keysLocked() {
		if k.IsKSK() {
			out = append(out, k.DS())
		}
	}
	return out
}

// SetEntries replaces the published directory entries and re-signs what
// changed: the owner names of the entries that differ from the previous
// call, their NSEC3 records and those of their neighbours in the chain,
// and the SOA (incremental.go). On error the zone keeps its previous
// entries.
func (z *Zone) SetEntries(entries []Entry) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	changed := z.idx.diff(entries)
	if len(changed) == 0 {
		return nil
	}
	c, err := z.idx.change(z.origin, changed, func(name string) map[uint16][]dns.RR { return z.entries[name] })
	if err != nil {
		return err
	}
	if err := z.applyLocked(c.names); err != nil {
		return err
	}
	z.idx.commit(c)
	return nil
}

// SetEndpoints replaces the published endpoints and re-signs what changed.
func (z *Zone) SetEndpoints(ep Endpoints) error {
	data, err := endpointRecords(z.origin, ep)
	if err != nil {
		return err
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	old := z.endpoints
	z.endpoints = data
	if err := z.rebuildLocked(); err != nil {
		z.endpoints = old
		return err
	}
	return nil
}

// Maintain re-signs the RRsets whose signatures have less than the
// re-signing margin left. Call it periodically (Run does, hourly).
func (z *Zone) Maintain() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.rebuildLocked()
}

// ErrKSK: a second KSK that cannot join the zone.
var ErrKSK = errors.New("not a usable second KSK")

func (z *Zone) checkKSK2(ksk, k *Key) error {
	if k == nil {
		return nil
	}
	if !k.IsKSK() || dns.CanonicalName(k.DNSKEY.Hdr.Name) != z.origin || k.Tag() == ksk.Tag() || k.Tag() == z.zsk.Tag() {
		return fmt.Errorf("zone: %s: %w (need a KSK of this zone with a distinct key tag)", k, ErrKSK)
	}
	return nil
}

// SetKSKs replaces the key-signing keys: ksk, whose DS is the zone's
// (DS), and ksk2, nil or a second KSK published beside it and signing the
// DNSKEY RRset too, for a KSK rollover by double signature (RFC 6781
// §4.1.2): first the incoming key, then, once the parent has the new DS,
// the outgoing one.
func (z *Zone) SetKSKs(ksk, ksk2 *Key) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if ksk == nil || !ksk.IsKSK() || dns.CanonicalName(ksk.DNSKEY.Hdr.Name) != z.origin {
		return fmt.Errorf("zone: %v: %w", ksk, ErrKSK)
	}
	if err := z.checkKSK2(ksk, ksk2); err != nil {
		return err
	}
	prev, prev2 := z.ksk, z.ksk2
	z.ksk, z.ksk2 = ksk, ksk2
	if err := z.rebuildLocked(); err != nil {
		z.ksk, z.ksk2 = prev, prev2
		return err
	}
	return nil
}

// KSKTags names the KSKs: the zone's and a second one (0 when none).
func (z *Zone) KSKTags() (ksk, second uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.ksk2 != nil {
		second = z.ksk2.Tag()
	}
	return z.ksk.Tag(), second
}

// PrepublishZSK starts a ZSK rollover by pre-publication (RFC 6781
// §4.1.1.1): next joins the DNSKEY RRset but signs nothing yet, so that
// caches learn it before any signature by it appears.
func (z *Zone) PrepublishZSK(next *Key) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.zskNext != nil || z.zskOld != nil {
		return fmt.Errorf("prepublish: %w (a rollover is in progress)", ErrRollover)
	}
	if next.IsKSK() || dns.CanonicalName(next.DNSKEY.Hdr.Name) != z.origin || next.Tag() == z.zsk.Tag() || next.Tag() == z.ksk.Tag() ||
		(z.ksk2 != nil && next.Tag() == z.ksk2.Tag()) {
		return fmt.Errorf("prepublish: %s: %w (need a new ZSK of this zone with a distinct key tag)", next, ErrRollover)
	}
	z.zskNext, z.published = next, z.now()
	if err := z.rebuildLocked(); err != nil {
		z.zskNext = nil
		return err
	}
	return nil
}

// ActivateZSK makes the pre-published key sign the zone once the DNSKEY
// RRset with it has had time to reach caches (its TTL). The old key stays
// published.
func (z *Zone) ActivateZSK() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.zskNext == nil {
		return fmt.Errorf("activate: %w (no key pre-published)", ErrRollover)
	}
	if wait := z.published.Add(DNSKEYTTL * time.Second).Sub(z.now()); wait > 0 {
		return fmt.Errorf("activate: %w: the new DNSKEY RRset may still be unknown to caches for %v", ErrTooEarly, wait.Round(time.Second))
	}
	z.zskOld, z.zsk, z.zskNext, z.activated = z.zsk, z.zskNext, nil, z.now()
	return z.rebuildLocked()
}

// RetireZSK removes the old ZSK from the DNSKEY RRset once every signature
// it made has expired from caches (the largest TTL in the zone).
func (z *Zone) RetireZSK() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.zskOld == nil {
		return fmt.Errorf("retire: %w (no old key)", ErrRollover)
	}
	if wait := z.activated.Add(maxTTL * time.Second).Sub(z.now()); wait > 0 {
		return fmt.Errorf("retire: %w: signatures by the old key may still be cached for %v", ErrTooEarly, wait.Round(time.Second))
	}
	z.zskOld = nil
	return z.rebuildLocked()
}

// RolloverState names the ZSKs: the one signing, a pre-published one and
// a retiring one (zero tags when absent).
func (z *Zone) RolloverState() (active, next, old uint16) {
	z.mu.Lock()
	defer z.mu.Unlock()
	active = z.zsk.Tag()
	if z.zskNext != nil {
		next = z.zskNext.Tag()
	}
	if z.zskOld != nil {
		old = z.zskOld.Tag()
	}
	return active, next, old
}

const maxTTL = DNSKEYTTL

func (z *Zone) keysLocked() []*Key {
	ks := []*Key{z.ksk, z.zsk}
	if z.ksk2 != nil {
		ks = append(ks, z.ksk2)
	}
	if z.zskNext != nil {
		ks = append(ks, z.zskNext)
	}
	if z.zskOld != nil {
		ks = append(ks, z.zskOld)
	}
	return ks
}

// records is owner name → type → RRs.
type records map[string]map[uint16][]dns.RR

func (r records) add(rr dns.RR) {
	h := rr.Header()
	h.Name = dns.CanonicalName(h.Name)
	h.Class = dns.ClassINET
	m := r[h.Name]
	if m == nil {
		m = map[uint16][]dns.RR{}
		r[h.Name] = m
	}
	m[h.Rrtype] = append(m[h.Rrtype], rr)
}

func hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

// endpointRecords turns endpoints into SRV records, addresses for the
// targets given as IP addresses (named <role>N.<origin>) and TLSA records.
func endpointRecords(origin string, ep Endpoints) (map[string]map[uint16][]dns.RR, error) {
	r := records{}
	var caDigest string
	if len(ep.CACert) > 0 {
		if _, err := x509.ParseCertificate(ep.CACert); err != nil {
			return nil, fmt.Errorf("endpoints: CA certificate: %w", err)
		}
		d := sha256.Sum256(ep.CACert)
		caDigest = strings.ToUpper(hex.EncodeToString(d[:]))
	}
	type role struct {
		service, prefix string
		protos          []string
		addrs           []string
		tlsa            bool
	}
	for _, ro := range []role{
		{dnsname.ServiceSIPS, "sip", []string{"tcp"}, ep.SIP, true},
		{dnsname.ServiceAPI, "api", []string{"tcp"}, ep.API, true},
		{dnsname.ServiceTURN, "turn", []string{"udp", "tcp"}, ep.TURN, false},
		{dnsname.ServiceTURNS, "turns", []string{"tcp"}, ep.TURNS, true},
	} {
		for i, a := range ro.addrs {
			host, portText, err := net.SplitHostPort(a)
			if err != nil {
				return nil, fmt.Errorf("endpoints: %s %q: %w", ro.service, a, err)
			}
			port, err := strconv.ParseUint(portText, 10, 16)
			if err != nil || port == 0 {
				return nil, fmt.Errorf("endpoints: %s %q: bad port", ro.service, a)
			}
			target := dns.CanonicalName(host)
			if ip, err := netip.ParseAddr(host); err == nil {
				if ip.IsUnspecified() {
					return nil, fmt.Errorf("endpoints: %s %q: an unspecified address cannot be published; set the public address", ro.service, a)
				}
				target = fmt.Sprintf("%s%d.%s", ro.prefix, i+1, origin)
				if ip.Is4() || ip.Is4In6() {
					r.add(&dns.A{Hdr: hdr(target, dns.TypeA, DataTTL), A: net.IP(ip.Unmap().AsSlice())})
				} else {
					r.add(&dns.AAAA{Hdr: hdr(target, dns.TypeAAAA, DataTTL), AAAA: net.IP(ip.AsSlice())})
				}
			} else if _, ok := dns.IsDomainName(host); !ok {
				return nil, fmt.Errorf("endpoints: %s %q: not a host name", ro.service, a)
			}
			for _, p := range ro.protos {
				r.add(&dns.SRV{Hdr: hdr(dnsname.SRV(ro.service, p, origin), dns.TypeSRV, DataTTL),
					Priority: 10, Weight: 10, Port: uint16(port), Target: target})
			}
			// RFC 7671 §5.2: DANE-TA(2) Cert(0) SHA2-256(1) pins the CA that
			// issues the server certificates; it lives in the zone only when
			// the target does.
			if ro.tlsa && caDigest != "" && dns.IsSubDomain(origin, target) {
				r.add(&dns.TLSA{Hdr: hdr(dnsname.TLSA(uint16(port), "tcp", target), dns.TypeTLSA, DataTTL),
					Usage: 2, Selector: 0, MatchingType: 1, Certificate: caDigest})
			}
		}
	}
	// Duplicates (the same endpoint listed twice) would make an RRset
	// with equal records, which RFC 2181 §5 forbids.
	for _, types := range r {
		for t, rrs := range types {
			types[t] = dedupe(rrs)
		}
	}
	return r, nil
}

// dedupe drops repeated records (same owner, type, class, TTL and data).
func dedupe(rrs []dns.RR) []dns.RR {
	if len(rrs) < 2 {
		return rrs
	}
	seen := map[string]bool{}
	out := rrs[:0]
	buf := make([]byte, 4096)
	for _, rr := range rrs {
		n, err := dns.PackRR(rr, buf, 0, nil, false)
		s := string(buf[:n])
		if err != nil {
			s = rr.String()
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, rr)
		}
	}
	return out
}

// sameRRs reports whether a and b hold the same records (owner, type,
// class, TTL and data): the RRset is unchanged and its signature can stay.
func sameRRs(a, b []dns.RR) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range b {
		found := false
		for _, y := range a {
			if x.Header().Ttl == y.Header().Ttl && dns.IsDuplicate(x, y) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// rebuildLocked assembles the zone, computes the NSEC3 chain and signs every
// RRset whose content or signing key changed or whose signature nears
// expiry; the others keep their signatures. z.mu must be held.
func (z *Zone) rebuildLocked() error {
	now := z.now()
	z.kskTag, z.zskTag, z.ksk2Tag = z.ksk.Tag(), z.zsk.Tag(), 0
	if z.ksk2 != nil {
		z.ksk2Tag = z.ksk2.Tag()
	}
	serial := uint32(now.Unix())
	if serial <= z.serial {
		serial = z.serial + 1
	}
	o := z.origin
	ns := "ns." + o
	r := records{}
	r.add(&dns.SOA{Hdr: hdr(o, dns.TypeSOA, NegativeTTL), Ns: ns, Mbox: "hostmaster." + o, Serial: serial,
		Refresh: 3600, Retry: 600, Expire: 1209600, Minttl: NegativeTTL})
	r.add(&dns.NS{Hdr: hdr(o, dns.TypeNS, DNSKEYTTL), Ns: ns})
	for _, a := range z.nsAddrs {
		if a.Is4() || a.Is4In6() {
			r.add(&dns.A{Hdr: hdr(ns, dns.TypeA, DNSKEYTTL), A: net.IP(a.Unmap().AsSlice())})
		} else {
			r.add(&dns.AAAA{Hdr: hdr(ns, dns.TypeAAAA, DNSKEYTTL), AAAA: net.IP(a.AsSlice())})
		}
	}
	for _, k := range z.keysLocked() {
		kk := dns.Copy(k.DNSKEY).(*dns.DNSKEY)
		kk.Hdr.Ttl = DNSKEYTTL
		r.add(kk)
	}
	// RFC 9276 §3.1: SHA-1, no additional iterations, empty salt; flags 0
	// (no opt-out).
	param := &dns.NSEC3PARAM{Hdr: hdr(o, dns.TypeNSEC3PARAM, 0), Hash: dns.SHA1, Flags: 0, Iterations: 0, Salt: ""}
	r.add(param)
	for _, src := range []map[string]map[uint16][]dns.RR{z.endpoints, z.entries} {
		for name, types := range src {
			for _, rrs := range types {
				for _, rr := range rrs {
					if !dns.IsSubDomain(o, name) {
						return fmt.Errorf("%s: %w", name, ErrOutsideZone)
					}
					r.add(rr)
				}
			}
		}
	}
	// Empty non-terminals exist (RFC 5155 §7.1) and get NSEC3 records with
	// an empty type bitmap.
	for name := range r {
		for n := name; n != o; {
			i, end := dns.NextLabel(n, 0)
			if end {
				break
			}
			n = n[i:]
			if _, ok := r[n]; !ok {
				r[n] = map[uint16][]dns.RR{}
			}
		}
	}

	old := z.view.Load()
	v := &view{origin: o, nodes: &nameMap{}}
	children := make(map[string]int, len(r)/2)
	for name := range r {
		if name != o {
			i, _ := dns.NextLabel(name, 0)
			children[name[i:]]++
		}
	}
	for name, types := range r {
		n := &node{sets: make(map[uint16]*rrset, len(types))}
		for t, rrs := range types {
			set, err := z.signedSet(old, name, t, rrs, now)
			if err != nil {
				return err
			}
			n.sets[t] = set
			n.types = append(n.types, t)
		}
		slices.Sort(n.types)
		v.nodes.set(name, n)
	}
	// The NSEC3 chain: each hashed owner points to the next in hash order.
	type hashed struct {
		hash string
		name string
	}
	hs := make([]hashed, 0, len(r))
	hashes := make(map[string]string, len(r))
	for name := range r {
		h, ok := z.hashes[name]
		if !ok {
			h = dns.HashName(name, dns.SHA1, 0, "")
		}
		hashes[name] = h
		hs = append(hs, hashed{h, name})
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].hash < hs[j].hash })
	links := make([]link, len(hs))
	for i, h := range hs {
		links[i] = link{hash: h.hash, name: h.name}
	}
	for i, h := range hs {
		n := v.nodes.get(h.name)
		set, err := z.nsec3Set(old, h.hash, hs[(i+1)%len(hs)].hash, n.types, now)
		if err != nil {
			return err
		}
		n.nsec3 = set
		links[i].set = set
	}
	v.chain = newChain(links)
	v.soa = v.nodes.get(o).sets[dns.TypeSOA]
	z.serial = serial
	z.hashes = hashes
	z.children = children
	z.view.Store(v)
	return nil
}

// signedSet returns the RRset name/t with signatures: those of the previous
// snapshot when the RRset is unchanged, signed by the current key and far
// enough from expiry; new ones otherwise.
func (z *Zone) signedSet(old *view, name string, t uint16, rrs []dns.RR, now time.Time) (*rrset, error) {
	rrs = dedupe(rrs)
	type signer struct {
		key *Key
		tag uint16
	}
	signers := []signer{{z.zsk, z.zskTag}}
	if t == dns.TypeDNSKEY {
		signers = []signer{{z.ksk, z.kskTag}}
		if z.ksk2 != nil {
			signers = append(signers, signer{z.ksk2, z.ksk2Tag})
		}
	}
	if old != nil {
		if prev := old.lookupSet(name, t); prev != nil && len(prev.sigs) == len(signers) && sameRRs(prev.rrs, rrs) {
			keep := true
			for i, s := range prev.sigs {
				s := s.(*dns.RRSIG)
				if s.KeyTag != signers[i].tag || s.Algorithm != signers[i].key.DNSKEY.Algorithm ||
					time.Unix(int64(s.Expiration), 0).Sub(now) <= z.resign {
					keep = false
				}
			}
			if keep {
				return prev, nil
			}
		}
	}
	// RFC 4035 §5.3.1 and RFC 6781 §4.4.2: an inception an hour back
	// tolerates clock skew; expirations are spread over a tenth of the
	// validity so that re-signing does not come all at once.
	jitter := time.Duration(rand.Int64N(int64(z.validity / 10)))
	set := &rrset{rrs: rrs}
	for _, sg := range signers {
		sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: rrs[0].Header().Ttl}, Algorithm: sg.key.DNSKEY.Algorithm, KeyTag: sg.tag,
			SignerName: z.origin, Inception: uint32(now.Add(-time.Hour).Unix()), Expiration: uint32(now.Add(z.validity - jitter).Unix())}
		if err := sig.Sign(sg.key.Signer, rrs); err != nil {
			return nil, fmt.Errorf("sign %s %s: %w", name, dns.TypeToString[t], err)
		}
		z.signed++
		set.sigs = append(set.sigs, sig)
	}
	return set, nil
}
