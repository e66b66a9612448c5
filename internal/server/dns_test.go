package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/dnszone"
)

func TestConfigDNS(t *testing.T) {
	c := Defaults("/d")
	c.DNS = DNSConfig{Addr: "127.0.0.1:5353", Zone: "dir.example.org", Algorithm: "ed25519", KSKFile: "/etc/phonex/ksk", ZSKFile: "zsk", ZSKLifetime: 720 * time.Hour, RateLimit: 2.5}
	back, err := ParseConfig("/d", c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.DNS, c.DNS) {
		t.Fatalf("round trip: %+v, want %+v", back.DNS, c.DNS)
	}
	if back.ZoneName() != "dir.example.org." {
		t.Fatalf("zone %s", back.ZoneName())
	}
	for _, in := range []string{"dns_addr = nowhere", "dns_zone = a..b", "dns_algorithm = rsasha1", "dns_ksk_file = k\ndns_zsk_file = k", "dns_zsk_file = ", "dns_zsk_lifetime = 1h", "dns_zsk_lifetime = soon", "dns_rate_limit = -1", "dns_rate_limit = lots"} {
		if _, err := ParseConfig("/d", []byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func deviceCert(t *testing.T) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "alice/phone"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestDirectoryZone: a node with dns_addr serves its zone; entries the
// directory publishes appear in it, validated from the DS that init made.
func TestDirectoryZone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Defaults(t.TempDir())
	cfg.Domain = "a.example"
	cfg.APIAddr, cfg.SIPAddr, cfg.DNS.Addr = "127.0.0.1:8443", "127.0.0.1:5061", "127.0.0.1:0"
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	ds, err := ZoneDS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Everything the node logs, at every level, to check that no query is.
	var logs syncBuffer
	n, err := Open(ctx, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	cert := deviceCert(t)
	// The node's directory service is the zone's source; this test feeds
	// entries by hand instead.
	n.SetDirectorySource(nil)
	// Published before the zone runs: kept for its start.
	if err := n.PublishDirectory([]dnszone.Entry{{E164: "+421900111222", AOR: "alice@a.example", Keys: []dnszone.DeviceKey{{Device: "phone", Cert: cert}}}}); err != nil {
		t.Fatal(err)
	}
	dz, err := n.openDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { dz.serve(ctx, n); close(done) }()
	defer func() { cancel(); <-done }()
	if !strings.HasPrefix(dz.line(), "dns: 127.0.0.1:") {
		t.Fatalf("ready line %q", dz.line())
	}

	r := &dnsval.Resolver{Server: dz.pc.LocalAddr().String(), Anchors: []dns.RR{ds}}
	if aor, err := r.SIPAddress(ctx, "+421900111222"); err != nil || aor != "alice@a.example" {
		t.Fatalf("NAPTR: %q %v", aor, err)
	}
	certs, err := r.UserKeys(ctx, "alice@a.example")
	if err != nil || len(certs) != 1 || !bytes.Equal(certs[0].Raw, cert) {
		t.Fatalf("keys: %v", err)
	}
	c, err := r.Cluster(ctx, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.API) != 1 || c.API[0].Addr != "127.0.0.1:8443" || !c.API[0].MatchesCA(n.CA().Cert) || len(c.SIP) != 1 || !c.SIP[0].MatchesCA(n.CA().Cert) {
		t.Fatalf("cluster %+v", c)
	}
	// A later publication replaces the entries.
	if err := n.PublishDirectory([]dnszone.Entry{{E164: "+421900111333", AOR: "bob@a.example"}}); err != nil {
		t.Fatal(err)
	}
	if aor, err := r.SIPAddress(ctx, "+421900111333"); err != nil || aor != "bob@a.example" {
		t.Fatalf("bob: %q %v", aor, err)
	}
	if _, err := r.SIPAddress(ctx, "+421900111222"); err == nil {
		t.Fatal("withdrawn number still resolves")
	}
	var zoneFile bytes.Buffer
	if err := n.ExportZone(ctx, &zoneFile); err != nil || !strings.Contains(zoneFile.String(), "NSEC3PARAM") {
		t.Fatalf("export: %v", err)
	}
	for _, secret := range []string{"e164", "_smimecert", "421900", "alice", "bob", "_sips"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the node logged a query (%q):\n%s", secret, logs.String())
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestZSKRolloverNode: the node rolls its ZSK over when it is older than
// dns_zsk_lifetime, one step per maintenance pass, with the state kept in
// files across a restart, and the zone validates at every step.
func TestZSKRolloverNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Defaults(t.TempDir())
	cfg.Domain = "a.example"
	cfg.APIAddr, cfg.SIPAddr, cfg.DNS.Addr = "127.0.0.1:8443", "127.0.0.1:5061", "127.0.0.1:0"
	cfg.DNS.ZSKLifetime = 3 * time.Hour
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	ds, _ := ZoneDS(cfg)
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	clock := time.Now()
	n.now = func() time.Time { return clock }
	dz, err := n.openDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { dz.zone.Serve(ctx, dz.pc, dz.ln); close(done) }()
	defer func() { cancel(); <-done }()
	r := &dnsval.Resolver{Server: dz.pc.LocalAddr().String(), Anchors: []dns.RR{ds}, Now: func() time.Time { return clock }}
	check := func(label string) {
		t.Helper()
		if _, err := r.SRV(ctx, "sips", "tcp", "a.example"); err != nil {
			t.Fatalf("%s: %v", label, err)
		}
	}
	step := func(advance time.Duration, want string) {
		t.Helper()
		clock = clock.Add(advance)
		got, err := n.rollZSK(dz.zone)
		if err != nil || !strings.Contains(got, want) || (want == "" && got != "") {
			t.Fatalf("after %v: step %q, %v; want %q", advance, got, err, want)
		}
		check(fmt.Sprintf("after step %q", got))
	}
	first, _, _ := dz.zone.RolloverState()
	check("start")
	step(time.Hour, "")
	step(2*time.Hour+time.Minute, "pre-published")
	_, next, _ := dz.zone.RolloverState()
	step(30*time.Minute, "")
	step(31*time.Minute, "signs the zone")
	if active, _, old := dz.zone.RolloverState(); active != next || old != first {
		t.Fatalf("active %d old %d, want %d and %d", active, old, next, first)
	}
	// A restart in the middle of the rollover restores it from the files.
	z2, err := n.BuildZone(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if active, _, old := z2.RolloverState(); active != next || old != first {
		t.Fatalf("after restart: active %d old %d, want %d and %d", active, old, next, first)
	}
	step(30*time.Minute, "")
	step(31*time.Minute, "retired")
	if len(dz.zone.DNSKEYs()) != 2 {
		t.Fatalf("%d DNSKEYs after the rollover", len(dz.zone.DNSKEYs()))
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "dns-zsk-old.private")); !os.IsNotExist(err) {
		t.Fatalf("old key file left: %v", err)
	}
	step(time.Hour, "")
}
