package dnsval

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnszone"
)

func TestResolverLookups(t *testing.T) {
	for _, alg := range []uint8{dnszone.ECDSAP256, dnszone.Ed25519} {
		t.Run(dns.AlgorithmToString[alg], func(t *testing.T) {
			f := newFixture(t, alg)
			r := f.resolver()
			ctx := context.Background()
			aor, err := r.SIPAddress(ctx, "+421900111222")
			if err != nil || aor != "alice@a.example" {
				t.Fatalf("SIPAddress = %q, %v", aor, err)
			}
			certs, err := r.UserKeys(ctx, "alice@a.example")
			if err != nil || len(certs) != 1 || !bytes.Equal(certs[0].Raw, f.alice) {
				t.Fatalf("UserKeys = %d, %v", len(certs), err)
			}
			if _, err := r.UserKeys(ctx, "bob@a.example"); !errors.Is(err, ErrNXDomain) {
				t.Fatalf("bob's keys: %v, want NXDOMAIN", err)
			}
			if _, err := r.SIPAddress(ctx, "+421900111999"); !errors.Is(err, ErrNXDomain) {
				t.Fatalf("unknown number: %v, want NXDOMAIN", err)
			}
			// An empty non-terminal of the ENUM tree: NODATA, proven.
			if _, err := r.Query(ctx, "0.0.9.1.2.4.e164."+origin, dns.TypeNAPTR); !errors.Is(err, ErrNoData) {
				t.Fatalf("empty non-terminal: %v, want NODATA", err)
			}
			if _, err := r.Query(ctx, "2.2.2.1.1.1.0.0.9.1.2.4.e164."+origin, dns.TypeTXT); !errors.Is(err, ErrNoData) {
				t.Fatalf("other type: %v, want NODATA", err)
			}
			c, err := r.Cluster(ctx, "a.example")
			if err != nil {
				t.Fatal(err)
			}
			d := sha256.Sum256(f.ca)
			if len(c.SIP) != 1 || c.SIP[0].Addr != "127.0.0.1:5061" || len(c.API) != 1 || c.API[0].Addr != "127.0.0.1:8443" ||
				len(c.API[0].CADigest) != 1 || !bytes.Equal(c.API[0].CADigest[0], d[:]) {
				t.Fatalf("cluster = %+v", c)
			}
			turn, err := r.SRV(ctx, "turn", "udp", "a.example")
			if err != nil || len(turn) != 1 || turn[0].Port != 3478 {
				t.Fatalf("turn SRV = %v, %v", turn, err)
			}
			if _, err := r.Query(ctx, "www.b.example.", dns.TypeA); !errors.Is(err, ErrNoAnchor) {
				t.Fatalf("outside the anchors: %v", err)
			}
		})
	}
}

func TestWrongAnchor(t *testing.T) {
	f := newFixture(t, dnszone.ECDSAP256)
	other, err := dnszone.GenerateKey(origin, dnszone.ECDSAP256, true)
	if err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Server: f.addr, Anchors: []dns.RR{other.DS()}, Now: f.clock.Now}
	if _, err := r.SIPAddress(context.Background(), "+421900111222"); !errors.Is(err, ErrBogus) {
		t.Fatalf("got %v, want bogus", err)
	}
	// A DNSKEY anchor works like a DS anchor.
	keys := f.zone.DNSKEYs()
	var ksk *dns.DNSKEY
	for _, k := range keys {
		if k.Flags == dnszone.FlagsKSK {
			ksk = k
		}
	}
	r = &Resolver{Server: f.addr, Anchors: []dns.RR{ksk}, Now: f.clock.Now}
	if _, err := r.SIPAddress(context.Background(), "+421900111222"); err != nil {
		t.Fatal(err)
	}
}
