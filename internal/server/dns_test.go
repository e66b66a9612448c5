package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/dnszone"
)

func TestConfigDNS(t *testing.T) {
	c := Defaults("/d")
	c.DNS = DNSConfig{Addr: "127.0.0.1:5353", Zone: "dir.example.org", Algorithm: "ed25519", KSKFile: "/etc/phonex/ksk", ZSKFile: "zsk"}
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
	for _, in := range []string{"dns_addr = nowhere", "dns_zone = a..b", "dns_algorithm = rsasha1", "dns_ksk_file = k\ndns_zsk_file = k", "dns_zsk_file = "} {
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
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	cert := deviceCert(t)
	// Published before the zone runs: kept for its start.
	if err := n.PublishDirectory([]dnszone.Entry{{E164: "+421900111222", AOR: "alice@a.example", Keys: []dnszone.DeviceKey{{Device: "phone", Cert: cert}}}}); err != nil {
		t.Fatal(err)
	}
	dz, err := n.openDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { dz.serve(ctx, n.log); close(done) }()
	defer func() { cancel(); <-done }()
	if !strings.HasPrefix(dz.line(), "dns: 127.0.0.1:") {
		t.Fatalf("ready line %q", dz.line())
	}

	r := &dnsval.Resolver{Server: dz.pc.LocalAddr().String(), Anchors: []dns.RR{ds}}
	if aor, err := r.SIPAddress(ctx, "+421900111222", "a.example"); err != nil || aor != "alice@a.example" {
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
	if aor, err := r.SIPAddress(ctx, "+421900111333", "a.example"); err != nil || aor != "bob@a.example" {
		t.Fatalf("bob: %q %v", aor, err)
	}
	if _, err := r.SIPAddress(ctx, "+421900111222", "a.example"); err == nil {
		t.Fatal("withdrawn number still resolves")
	}
	var zoneFile bytes.Buffer
	if err := n.ExportZone(ctx, &zoneFile); err != nil || !strings.Contains(zoneFile.String(), "NSEC3PARAM") {
		t.Fatalf("export: %v", err)
	}
}
