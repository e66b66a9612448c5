package dnsval

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnszone"
)

// reply asks the fixture's zone directly (no sockets) with the DO bit.
func (f *fixture) reply(name string, qtype uint16) *dns.Msg {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	q.SetEdns0(4096, true)
	return f.zone.Reply(q, false)
}

func (f *fixture) keys(t *testing.T) []*dns.DNSKEY {
	q := f.reply(origin, dns.TypeDNSKEY)
	s := group(q.Answer)[setKey{origin, dns.TypeDNSKEY}]
	keys, err := VerifyDNSKEYs(s.rrs, s.sigs, f.anchors, origin, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func flipSig(rr dns.RR) {
	s := rr.(*dns.RRSIG)
	b := []byte(s.Signature)
	// Flip a base64 character to another valid one.
	if b[5] == 'A' {
		b[5] = 'B'
	} else {
		b[5] = 'A'
	}
	s.Signature = string(b)
}

func TestValidate(t *testing.T) {
	f := newFixture(t, dnszone.ECDSAP256)
	keys := f.keys(t)
	alice := "2.2.2.1.1.1.0.0.9.1.2.4.e164." + origin
	missing := "9.9.9.1.1.1.0.0.9.1.2.4.e164." + origin
	ent := "0.0.9.1.2.4.e164." + origin
	for _, tc := range []struct {
		name   string
		qname  string
		qtype  uint16
		tamper func(m *dns.Msg)
		at     time.Duration // from now
		want   error         // nil: an answer
	}{
		{name: "good", qname: alice, qtype: dns.TypeNAPTR},
		{name: "signature byte flipped", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: func(m *dns.Msg) { flipSig(m.Answer[1]) }},
		{name: "record changed", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus,
			tamper: func(m *dns.Msg) { m.Answer[0].(*dns.NAPTR).Regexp = "!^.*$!sip:mallory@evil.example!" }},
		{name: "signature stripped", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: func(m *dns.Msg) { m.Answer = m.Answer[:1] }},
		{name: "expired", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus, at: 15 * 24 * time.Hour},
		{name: "not yet valid", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus, at: -2 * time.Hour},
		{name: "signer outside zone", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus,
			tamper: func(m *dns.Msg) { m.Answer[1].(*dns.RRSIG).SignerName = "example." }},
		{name: "wildcard label count", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus,
			tamper: func(m *dns.Msg) { m.Answer[1].(*dns.RRSIG).Labels-- }},
		{name: "nxdomain proven", qname: missing, qtype: dns.TypeNAPTR, want: ErrNXDomain},
		{name: "nxdomain without closest encloser", qname: missing, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: dropNSEC3(0)},
		{name: "nxdomain without next closer", qname: missing, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: dropNSEC3(1)},
		{name: "nxdomain without wildcard", qname: missing, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: dropNSEC3(2)},
		{name: "nxdomain NSEC3 signature flipped", qname: missing, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: func(m *dns.Msg) {
			for _, rr := range m.Ns {
				if s, ok := rr.(*dns.RRSIG); ok && s.TypeCovered == dns.TypeNSEC3 {
					flipSig(s)
					return
				}
			}
		}},
		{name: "nxdomain turned into empty answer", qname: missing, qtype: dns.TypeNAPTR, want: ErrBogus,
			tamper: func(m *dns.Msg) { m.Rcode = dns.RcodeSuccess }},
		{name: "nodata proven", qname: ent, qtype: dns.TypeNAPTR, want: ErrNoData},
		{name: "nodata without proof", qname: ent, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: func(m *dns.Msg) { m.Ns = m.Ns[:2] }},
		{name: "answer removed, nodata claimed", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: func(m *dns.Msg) {
			// Replace the answer with the name's own NSEC3, which lists NAPTR.
			nx := f.reply(alice, dns.TypeTXT)
			m.Answer = nil
			m.Ns = nx.Ns
		}},
		{name: "nxdomain claimed for existing name", qname: alice, qtype: dns.TypeNAPTR, want: ErrBogus, tamper: func(m *dns.Msg) {
			nx := f.reply(missing, dns.TypeNAPTR)
			m.Answer = nil
			m.Rcode = dns.RcodeNameError
			m.Ns = nx.Ns
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := f.reply(tc.qname, tc.qtype)
			if tc.tamper != nil {
				tc.tamper(m)
			}
			rrs, err := Validate(m, tc.qname, tc.qtype, origin, keys, f.clock.Now().Add(tc.at))
			if tc.want == nil {
				if err != nil || len(rrs) == 0 {
					t.Fatalf("got %v, %v", rrs, err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// dropNSEC3 removes the i-th NSEC3 record of the authority section and its
// signature.
func dropNSEC3(i int) func(m *dns.Msg) {
	return func(m *dns.Msg) {
		var names []string
		for _, rr := range m.Ns {
			if rr.Header().Rrtype == dns.TypeNSEC3 {
				names = append(names, rr.Header().Name)
			}
		}
		if i >= len(names) {
			panic("proof has fewer NSEC3 records")
		}
		var out []dns.RR
		for _, rr := range m.Ns {
			if strings.EqualFold(rr.Header().Name, names[i]) {
				continue
			}
			out = append(out, rr)
		}
		m.Ns = out
	}
}

func TestVerifyDNSKEYsTampered(t *testing.T) {
	f := newFixture(t, dnszone.Ed25519)
	m := f.reply(origin, dns.TypeDNSKEY)
	for _, rr := range m.Answer {
		if s, ok := rr.(*dns.RRSIG); ok {
			flipSig(s)
		}
	}
	s := group(m.Answer)[setKey{origin, dns.TypeDNSKEY}]
	if _, err := VerifyDNSKEYs(s.rrs, s.sigs, f.anchors, origin, f.clock.Now()); !errors.Is(err, ErrBogus) {
		t.Fatalf("got %v", err)
	}
}

func FuzzValidate(f *testing.F) {
	fx := newFixture(f, dnszone.ECDSAP256)
	q := new(dns.Msg)
	q.SetQuestion(origin, dns.TypeDNSKEY)
	q.SetEdns0(4096, true)
	km := fx.zone.Reply(q, false)
	ks := group(km.Answer)[setKey{origin, dns.TypeDNSKEY}]
	keys, err := VerifyDNSKEYs(ks.rrs, ks.sigs, fx.anchors, origin, fx.clock.Now())
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range []string{"2.2.2.1.1.1.0.0.9.1.2.4.e164." + origin, "9.9.9.1.1.1.0.0.9.1.2.4.e164." + origin, "0.0.9.1.2.4.e164." + origin} {
		q.SetQuestion(n, dns.TypeNAPTR)
		b, _ := fx.zone.Reply(q, false).Pack()
		f.Add(b)
	}
	now := fx.clock.Now()
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(dns.Msg)
		if m.Unpack(b) != nil || len(m.Question) != 1 {
			return
		}
		q := m.Question[0]
		if _, ok := dns.IsDomainName(q.Name); !ok {
			return
		}
		rrs, err := Validate(m, q.Name, q.Qtype, origin, keys, now)
		if err == nil && len(rrs) == 0 {
			t.Fatal("no error and no records")
		}
		if s := group(m.Answer)[setKey{dns.CanonicalName(q.Name), dns.TypeDNSKEY}]; s != nil {
			VerifyDNSKEYs(s.rrs, s.sigs, fx.anchors, origin, now)
		}
	})
}
