package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/dnsval"
)

// TestKSKRolloverNode walks the operator's KSK rollover (double
// signature, RFC 6781 §4.1.2) on a node serving its zone: at every step
// the zone validates from each DS that must work there and not from the
// old one once it is retired, the steps refuse to run early, a restart
// mid-rollover keeps both keys, and the anchor devices get lists every
// DS that validates.
func TestKSKRolloverNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := Defaults(t.TempDir())
	cfg.Domain = "a.example"
	cfg.APIAddr, cfg.SIPAddr, cfg.DNS.Addr = "127.0.0.1:8443", "127.0.0.1:5061", "127.0.0.1:0"
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	oldDS, _ := ZoneDS(cfg)
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	dz, err := n.openDNS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { dz.zone.Serve(ctx, dz.pc, dz.ln); close(done) }()
	defer func() { cancel(); <-done }()
	validates := func(ds *dns.DS) error {
		r := &dnsval.Resolver{Server: dz.pc.LocalAddr().String(), Anchors: []dns.RR{ds}}
		_, err := r.SRV(ctx, "sips", "tcp", "a.example")
		return err
	}
	check := func(step string, want map[*dns.DS]bool) {
		t.Helper()
		if did, err := n.syncZoneKeys(dz.zone); err != nil {
			t.Fatalf("%s: sync: %v", step, err)
		} else if did == "" && step != "start" {
			t.Fatalf("%s: the node did not follow the key files", step)
		}
		valid := 0
		for ds, ok := range want {
			err := validates(ds)
			if ok && err != nil || !ok && !errors.Is(err, dnsval.ErrBogus) {
				t.Fatalf("%s: DS %d: %v, want valid %v", step, ds.KeyTag, err, ok)
			}
			if ok {
				valid++
			}
		}
		if got := len(dz.zone.DSSet()); got != valid {
			t.Fatalf("%s: the zone's DS set has %d records, %d validate", step, got, valid)
		}
	}
	check("start", map[*dns.DS]bool{oldDS: true})

	t0 := time.Now()
	st, err := KSKPrepublish(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != "prepublished" || st.Incoming == 0 || len(st.DS) != 2 || len(st.ParentDS) != 1 || st.ParentDS[0] != oldDS.String() {
		t.Fatalf("after prepublish: %+v", st)
	}
	newRR, _ := dns.NewRR(st.DS[1])
	newDS := newRR.(*dns.DS)
	check("pre-published", map[*dns.DS]bool{oldDS: true, newDS: true})
	if _, err := KSKPrepublish(cfg, t0); !errors.Is(err, ErrRolloverBusy) {
		t.Fatalf("a second prepublish: %v", err)
	}
	// A restart keeps both keys signing.
	if z2, err := n.BuildZone(ctx); err != nil {
		t.Fatal(err)
	} else if ksk, second := z2.KSKTags(); ksk != oldDS.KeyTag || second != newDS.KeyTag {
		t.Fatalf("after a restart: KSKs %d and %d", ksk, second)
	}
	// Devices are given both.
	a := anchorOf(t, n)
	if len(a) != 2 {
		t.Fatalf("anchor for devices: %q", a)
	}

	if _, err := KSKActivate(cfg, t0.Add(30*time.Minute), false); !errors.Is(err, ErrTooEarly) {
		t.Fatalf("activate before the DNSKEY TTL: %v", err)
	}
	t1 := t0.Add(activateWait)
	if st, err = KSKActivate(cfg, t1, false); err != nil {
		t.Fatal(err)
	}
	if st.Step != "activated" || st.KSK != newDS.KeyTag || st.Outgoing != oldDS.KeyTag || len(st.ParentDS) != 1 || st.ParentDS[0] != newDS.String() {
		t.Fatalf("after activate: %+v", st)
	}
	check("activated", map[*dns.DS]bool{oldDS: true, newDS: true})
	if ds := dz.zone.DS(); ds.KeyTag != newDS.KeyTag {
		t.Fatalf("the zone's DS after activation: %d", ds.KeyTag)
	}
	if ds, _ := ZoneDS(cfg); ds.String() != newDS.String() {
		t.Fatalf("'dns ds' after activation: %s", ds)
	}

	if _, err := KSKRetire(cfg, t1.Add(time.Hour), DefaultParentDSTTL, false); !errors.Is(err, ErrTooEarly) {
		t.Fatalf("retire before the parent's DS TTL: %v", err)
	}
	if st, err = KSKRetire(cfg, t1.Add(DefaultParentDSTTL), DefaultParentDSTTL, false); err != nil {
		t.Fatal(err)
	}
	if st.Step != "none" || len(st.DS) != 1 || st.DS[0] != newDS.String() {
		t.Fatalf("after retire: %+v", st)
	}
	check("retired", map[*dns.DS]bool{oldDS: false, newDS: true})
	if a := anchorOf(t, n); len(a) != 1 || a[0] != newDS.String() {
		t.Fatalf("anchor for devices after the rollover: %q", a)
	}
	if _, err := KSKRetire(cfg, t1.Add(48*time.Hour), DefaultParentDSTTL, false); !errors.Is(err, ErrNoRollover) {
		t.Fatalf("retire again: %v", err)
	}

	// The operator's ZSK rollover: the node publishes the new key.
	active, _, _ := dz.zone.RolloverState()
	if _, err := ZSKRollNow(cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	if did, err := n.syncZoneKeys(dz.zone); err != nil || did == "" {
		t.Fatalf("zsk-roll not followed: %q %v", did, err)
	}
	if a2, next, _ := dz.zone.RolloverState(); a2 != active || next == 0 {
		t.Fatalf("after zsk-roll: active %d next %d", a2, next)
	}
	if _, err := ZSKRollNow(cfg, time.Now()); !errors.Is(err, ErrRolloverBusy) {
		t.Fatalf("a second zsk-roll: %v", err)
	}
	if err := validates(newDS); err != nil {
		t.Fatal(err)
	}
}

// anchorOf is what the anchor endpoint gives devices (without the TLS
// client check, which TestDirectoryAnchorFromEnrollment covers end to end).
func anchorOf(t *testing.T, n *Node) []string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/v1/directory/anchor", nil)
	req.TLS = &tls.ConnectionState{}
	a, err := n.dirAnchor(req.Context(), req, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a.(api.DirAnchor).DS
}
