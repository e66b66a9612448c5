package e2e

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/dnszone"
)

// TestDirectoryAnchorFromEnrollment: a device enrolled with a node that
// serves the signed zone got the zone's DS records and DNS address from
// the node, so 'phonex directory lookup --dns' validates without an
// anchor file; a server answering with a zone signed by other keys (a
// forged zone for the same name) fails validation.
func TestDirectoryAnchorFromEnrollment(t *testing.T) {
	c := newCluster(t)
	dnsAddr := freeDNSAddr(t)
	c.configure("dns_addr = " + dnsAddr)
	c.n = serve(t, c.data)
	c.device("alpha", "phone", true)
	c.device("bravo", "b1", true)
	const num = "+420777000333"
	c.mustPx("alpha/phone", "directory", "publish", "--number", num, "--json")
	zone := c.zoneResolver(dnsAddr)
	waitFor(t, "the number in the zone", 10*time.Second, func() bool {
		aor, err := zone.SIPAddress(context.Background(), num)
		return err == nil && aor == "alpha@example.org"
	})

	// The server the node named, and the anchor it gave at enrollment.
	for _, args := range [][]string{{"--dns"}, {"--dns", dnsAddr}} {
		out := c.mustPx("bravo/b1", append([]string{"directory", "lookup", num}, args...)...)
		if !strings.Contains(out, "sip:alpha@example.org") || !strings.Contains(out, "validated on this device") {
			t.Fatalf("lookup %v: %s", args, out)
		}
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
	forgedAddr := freeDNSAddr(t)
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
