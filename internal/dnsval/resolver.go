package dnsval

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsname"
)

// Resolver asks Server and validates every answer from Anchors. The zero
// value of the optional fields is usable.
type Resolver struct {
	Server  string   // host:port of an authoritative server or a resolver
	Anchors []dns.RR // DS or DNSKEY records of the zones it trusts

	// ENUMZone is the zone whose e164 subtree NAPTR and SIPAddress look
	// numbers up in; empty: the anchors' zone when they name only one.
	ENUMZone string

	Timeout time.Duration    // per exchange; 0: 3s
	Now     func() time.Time // validity of signatures; nil: time.Now

	mu   sync.Mutex
	keys map[string]cachedKeys // zone → validated DNSKEY RRset
}

type cachedKeys struct {
	keys    []*dns.DNSKEY
	expires time.Time
}

func (r *Resolver) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// zoneOf returns the closest anchored zone enclosing name.
func (r *Resolver) zoneOf(name string) (string, error) {
	best, labels := "", -1
	for _, a := range r.Anchors {
		z := dns.CanonicalName(a.Header().Name)
		if dns.IsSubDomain(z, name) && dns.CountLabel(z) > labels {
			best, labels = z, dns.CountLabel(z)
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s: %w", name, ErrNoAnchor)
	}
	return best, nil
}

// Query returns the validated RRset name/qtype, or ErrNoData, ErrNXDomain
// (both proven), ErrBogus, ErrNoAnchor or a transport error.
func (r *Resolver) Query(ctx context.Context, name string, qtype uint16) ([]dns.RR, error) {
	name = dns.CanonicalName(name)
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("%q: not a domain name", name)
	}
	zone, err := r.zoneOf(name)
	if err != nil {
		return nil, err
	}
	keys, cached, err := r.zoneKeys(ctx, zone, false)
	if err != nil {
		return nil, err
	}
	m, err := r.exchange(ctx, name, qtype)
	if err != nil {
		return nil, err
	}
	rrs, err := Validate(m, name, qtype, zone, keys, r.now())
	if errors.Is(err, ErrBogus) && cached {
		// The zone may have rolled its ZSK since the keys were cached:
		// fetch them again once before calling the answer bogus.
		if keys, _, kerr := r.zoneKeys(ctx, zone, true); kerr == nil {
			rrs, err = Validate(m, name, qtype, zone, keys, r.now())
		}
	}
	return rrs, err
}

// zoneKeys returns zone's validated DNSKEY RRset, from the cache unless
// fresh is set; cached tells whether it came from the cache.
func (r *Resolver) zoneKeys(ctx context.Context, zone string, fresh bool) (keys []*dns.DNSKEY, cached bool, err error) {
	now := r.now()
	r.mu.Lock()
	c, ok := r.keys[zone]
	r.mu.Unlock()
	if ok && !fresh && now.Before(c.expires) {
		return c.keys, true, nil
	}
	m, err := r.exchange(ctx, zone, dns.TypeDNSKEY)
	if err != nil {
		return nil, false, err
	}
	if m.Rcode != dns.RcodeSuccess {
		return nil, false, bogus("DNSKEY of %s: server answered %s", zone, dns.RcodeToString[m.Rcode])
	}
	s := group(m.Answer)[setKey{zone, dns.TypeDNSKEY}]
	if s == nil {
		return nil, false, bogus("no DNSKEY RRset for %s", zone)
	}
	keys, err = VerifyDNSKEYs(s.rrs, s.sigs, r.Anchors, zone, now)
	if err != nil {
		return nil, false, err
	}
	ttl := time.Duration(s.rrs[0].Header().Ttl) * time.Second
	r.mu.Lock()
	if r.keys == nil {
		r.keys = map[string]cachedKeys{}
	}
	r.keys[zone] = cachedKeys{keys: keys, expires: now.Add(min(ttl, time.Hour))}
	r.mu.Unlock()
	return keys, false, nil
}

// exchange asks the server over UDP with EDNS0 and the DO bit, and again
// over TCP when the answer is truncated.
func (r *Resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.RecursionDesired = true
	// CD: a validating resolver hands over what it has and the checks are
	// ours (RFC 4035 §3.2.2), so its verdict (the AD bit) is never needed.
	q.CheckingDisabled = true
	q.SetEdns0(1232, true)
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	var last error
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, UDPSize: 1232, Timeout: timeout}
		m, _, err := c.ExchangeContext(ctx, q, r.Server)
		if err != nil {
			last = fmt.Errorf("query %s %s at %s: %w", name, dns.TypeToString[qtype], r.Server, err)
			if network == "udp" {
				continue // a server may answer on TCP only
			}
			return nil, last
		}
		if len(m.Question) != 1 || !strings.EqualFold(m.Question[0].Name, name) || m.Question[0].Qtype != qtype {
			return nil, fmt.Errorf("query %s %s: the answer is for another question", name, dns.TypeToString[qtype])
		}
		if m.Truncated && network == "udp" {
			continue
		}
		return m, nil
	}
	return nil, last
}

// enumZone is ENUMZone, or the one anchored zone.
func (r *Resolver) enumZone() (string, error) {
	if r.ENUMZone != "" {
		return r.ENUMZone, nil
	}
	zone := ""
	for _, a := range r.Anchors {
		z := dns.CanonicalName(a.Header().Name)
		if zone != "" && z != zone {
			return "", errors.New("anchors for several zones: set ENUMZone to the one holding the numbers")
		}
		zone = z
	}
	if zone == "" {
		return "", ErrNoAnchor
	}
	return zone, nil
}

// NAPTR returns the validated ENUM NAPTR records of number (E.164, "+421...")
// under e164.<ENUMZone>.
func (r *Resolver) NAPTR(ctx context.Context, number string) ([]*dns.NAPTR, error) {
	zone, err := r.enumZone()
	if err != nil {
		return nil, err
	}
	name, err := dnsname.ENUM(number, zone)
	if err != nil {
		return nil, err
	}
	rrs, err := r.Query(ctx, name, dns.TypeNAPTR)
	if err != nil {
		return nil, err
	}
	out := make([]*dns.NAPTR, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.(*dns.NAPTR))
	}
	// RFC 3403 §4.1: lowest order first, then lowest preference.
	slices.SortFunc(out, func(a, b *dns.NAPTR) int {
		if a.Order != b.Order {
			return int(a.Order) - int(b.Order)
		}
		return int(a.Preference) - int(b.Preference)
	})
	return out, nil
}

// SIPAddress resolves number to the user@domain of its first usable
// E2U+sip NAPTR record.
func (r *Resolver) SIPAddress(ctx context.Context, number string) (string, error) {
	ns, err := r.NAPTR(ctx, number)
	if err != nil {
		return "", err
	}
	for _, n := range ns {
		if aor, err := dnsname.SIPURIFromNAPTR(n); err == nil {
			return aor, nil
		}
	}
	return "", fmt.Errorf("%s: %w (no E2U+sip record)", number, ErrNoData)
}

// UserKeys returns the device certificates published for aor in SMIMEA
// records with usage 3, selector 0, matching 0 (the whole certificate).
func (r *Resolver) UserKeys(ctx context.Context, aor string) ([]*x509.Certificate, error) {
	name, err := dnsname.SMIMEA(aor)
	if err != nil {
		return nil, err
	}
	rrs, err := r.Query(ctx, name, dns.TypeSMIMEA)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, rr := range rrs {
		s := rr.(*dns.SMIMEA)
		if s.Usage != 3 || s.Selector != 0 || s.MatchingType != 0 {
			continue
		}
		der, err := hex.DecodeString(s.Certificate)
		if err != nil {
			return nil, bogus("SMIMEA of %s: %v", aor, err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("SMIMEA of %s: certificate: %w", aor, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w (no SMIMEA 3 0 0 record)", aor, ErrNoData)
	}
	return out, nil
}

// SRV returns the validated SRV records _service._proto.domain, ordered by
// priority (RFC 2782; weights are left to the caller).
func (r *Resolver) SRV(ctx context.Context, service, proto, domain string) ([]*dns.SRV, error) {
	rrs, err := r.Query(ctx, dnsname.SRV(service, proto, domain), dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	out := make([]*dns.SRV, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.(*dns.SRV))
	}
	slices.SortStableFunc(out, func(a, b *dns.SRV) int { return int(a.Priority) - int(b.Priority) })
	return out, nil
}

// TLSA returns the validated TLSA records at name (_port._proto.host).
func (r *Resolver) TLSA(ctx context.Context, name string) ([]*dns.TLSA, error) {
	rrs, err := r.Query(ctx, name, dns.TypeTLSA)
	if err != nil {
		return nil, err
	}
	out := make([]*dns.TLSA, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, rr.(*dns.TLSA))
	}
	return out, nil
}

// Addrs returns host's validated IPv4 and IPv6 addresses.
func (r *Resolver) Addrs(ctx context.Context, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	var errs []error
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		rrs, err := r.Query(ctx, host, t)
		if err != nil {
			if errors.Is(err, ErrNoData) {
				continue
			}
			errs = append(errs, err)
			continue
		}
		for _, rr := range rrs {
			var ip net.IP
			switch rr := rr.(type) {
			case *dns.A:
				ip = rr.A
			case *dns.AAAA:
				ip = rr.AAAA
			}
			if a, ok := netip.AddrFromSlice(ip); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	if len(out) == 0 {
		if len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		return nil, fmt.Errorf("%s: %w (no address)", host, ErrNoData)
	}
	return out, nil
}
