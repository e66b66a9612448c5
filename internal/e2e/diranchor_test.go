package e2e

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/freeport"
)

// zoneResolverFresh validates from anchors with no cached keys.
func (c *cluster) zoneResolverFresh(addr string, anchors []dns.RR) *dnsval.Resolver {
	return &dnsval.Resolver{Server: addr, Anchors: anchors}
}

// TestDirectoryAnchorFromEnrollment: a device enrolled with a node that
// serves the signed zone got the zone's DS records and DNS address from
// the node, so 'phonex directory lookup --dns' validates without an
// anchor file; a server answering with a zone signed by other keys (a
// forged zone for the same name) fails validation.
func TestDirectoryAnchorFromEnrollment(t *testing.T) {
	c := newCluster(t)
	dnsAddr := freeport.Addr(t)
	c.configure("dns_addr = " + dnsAddr)
	c.n = serve(t, c.data)
	c.device("alpha", "phone", true)
	c.device("bravo", "b1", true)
	const num = "+420777000333"
	c.mustPx("alpha/phone", "directory", "publish", "--number", num, "--json")
	zone := c.zoneResolver(dnsAddr)
	waitFor(t, "the number in the zone", 30*time.Second, func() bool {
		aor, err := zone.SIPAddress(context.Background(), num)
		return err == nil && aor == "alpha@example.org"
	})

	// What the node gave: the DS of its KSK and its DNS server.
	an := decode[struct {
		Zone    string   `json:"zone"`
		DS      []string `json:"ds"`
		DNSAddr string   `json:"dns_addr"`
	}](t, c.mustPx("bravo/b1", "directory", "anchor", "--json"))
	if an.Zone != "example.org." || len(an.DS) != 1 || an.DS[0] != zone.Anchors[0].String() || an.DNSAddr != dnsAddr {
		t.Fatalf("anchor: %+v, want the DS %s and %s", an, zone.Anchors[0], dnsAddr)
	}

	// The server the node named, and the anchor it gave at enrollment.
	for _, args := range [][]string{{"--dns"}, {"--dns", dnsAddr}} {
		out := c.mustPx("bravo/b1", append([]string{"directory", "lookup", num}, args...)...)
		if !strings.Contains(out, "sip:alpha@example.org") || !strings.Contains(out, "validated on this device") {
			t.Fatalf("lookup %v: %s", args, out)
		}
	}

	// The operator rolls the KSK over; the device's anchor (the old DS)
	// stops validating once the old key is retired, and the device asks
	// the node for the new one.
	st := decode[struct {
		DS []string `json:"ds"`
	}](t, mustRun(t, nil, "phonexd", "dns", "ksk-prepublish", "--data", c.data, "--json"))
	if len(st.DS) != 2 {
		t.Fatalf("ksk-prepublish: %+v", st)
	}
	newDS, err := dns.NewRR(st.DS[1])
	if err != nil {
		t.Fatal(err)
	}
	newZone := &dnsval.Resolver{Server: dnsAddr, Anchors: []dns.RR{newDS}}
	waitFor(t, "the new KSK in the zone", 15*time.Second, func() bool {
		_, err := newZone.SIPAddress(context.Background(), num)
		return err == nil
	})
	mustRun(t, nil, "phonexd", "dns", "ksk-activate", "--data", c.data, "--force")
	if out := mustRun(t, nil, "phonexd", "dns", "ksk-retire", "--data", c.data, "--force"); !strings.Contains(out, newDS.String()) {
		t.Fatalf("ksk-retire printed no new DS: %s", out)
	}
	waitFor(t, "the old KSK retired", 15*time.Second, func() bool {
		_, err := c.zoneResolverFresh(dnsAddr, zone.Anchors).SIPAddress(context.Background(), num)
		return errors.Is(err, dnsval.ErrBogus)
	})
	if out := c.mustPx("bravo/b1", "directory", "lookup", num, "--dns"); !strings.Contains(out, "sip:alpha@example.org") {
		t.Fatalf("lookup after the KSK rollover: %s", out)
	}

	// A forged zone for example.org: same names, other keys, another
	// SIP address for the number. Nothing in it validates.
	ksk, _ := dnszone.GenerateKey("example.org.", dnszone.ECDSAP256, true)
	zsk, _ := dnszone.GenerateKey("example.org.", dnszone.ECDSAP256, false)
	forged, err := dnszone.New(dnszone.Config{Origin: "example.org.", KSK: ksk, ZSK: zsk})
	if err != nil {
		t.Fatal(err)
	}
	if err := forged.SetEntries([]dnszone.Entry{{E164: num, AOR: "mallory@example.org"}}); err != nil {
		t.Fatal(err)
	}
	forgedAddr := freeport.Addr(t)
	pc, err := net.ListenPacket("udp", forgedAddr)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", forgedAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go forged.Serve(ctx, pc, ln)
	defer pc.Close()
	defer ln.Close()
	r := c.px("bravo/b1", "directory", "lookup", num, "--dns", forgedAddr)
	if r.code != 1 || !strings.Contains(r.err, "DNSSEC") || strings.Contains(r.out, "mallory") {
		t.Fatalf("lookup in the forged zone: exit %d %q %q", r.code, r.out, r.err)
	}
}
