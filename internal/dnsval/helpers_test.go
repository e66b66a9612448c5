package dnsval

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/udptcp"
)

const origin = "a.example."

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func testCert(t testing.TB, cn string, isCA bool) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour), IsCA: isCA, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

type fixture struct {
	zone    *dnszone.Zone
	ksk     *dnszone.Key
	clock   *clock
	anchors []dns.RR
	addr    string
	alice   []byte // alice's device certificate
	ca      []byte
}

// newFixture signs a zone with alice and bob and serves it on loopback.
func newFixture(t testing.TB, alg uint8) *fixture {
	t.Helper()
	return newFixtureAt(t, alg, t0, nil)
}

// newFixtureAt is newFixture with the zone's clock at start; handler, when
// set, serves instead of the zone (to tamper with its answers).
func newFixtureAt(t testing.TB, alg uint8, start time.Time, handler func(z *dnszone.Zone) dns.Handler) *fixture {
	t.Helper()
	f := &fixture{clock: &clock{start}}
	ksk, err := dnszone.GenerateKey(origin, alg, true)
	if err != nil {
		t.Fatal(err)
	}
	zsk, err := dnszone.GenerateKey(origin, alg, false)
	if err != nil {
		t.Fatal(err)
	}
	f.zone, err = dnszone.New(dnszone.Config{Origin: origin, KSK: ksk, ZSK: zsk, Now: f.clock.Now,
		NSAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	f.anchors, f.ksk = []dns.RR{ksk.DS()}, ksk
	f.alice = testCert(t, "alice", false)
	f.ca = testCert(t, "ca", true)
	if err := f.zone.SetEntries([]dnszone.Entry{
		{E164: "+421900111222", AOR: "alice@a.example", Keys: []dnszone.DeviceKey{{Device: "phone", Cert: f.alice}}},
		{E164: "+421900111333", AOR: "bob@a.example"},
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.zone.SetEndpoints(dnszone.Endpoints{SIP: []string{"127.0.0.1:5061"}, API: []string{"127.0.0.1:8443"},
		TURN: []string{"127.0.0.1:3478"}, CACert: f.ca}); err != nil {
		t.Fatal(err)
	}
	pc, ln, err := udptcp.Listen("udp", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if handler == nil {
		go func() { f.zone.Serve(ctx, pc, ln); close(done) }()
	} else {
		h := handler(f.zone)
		us, ts := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
		started := make(chan struct{}, 2)
		us.NotifyStartedFunc = func() { started <- struct{}{} }
		ts.NotifyStartedFunc = func() { started <- struct{}{} }
		go us.ActivateAndServe()
		go ts.ActivateAndServe()
		<-started
		<-started
		go func() { <-ctx.Done(); us.Shutdown(); ts.Shutdown(); close(done) }()
	}
	t.Cleanup(func() { cancel(); <-done })
	f.addr = pc.LocalAddr().String()
	return f
}

func (f *fixture) resolver() *Resolver {
	return &Resolver{Server: f.addr, Anchors: f.anchors, Now: f.clock.Now}
}
