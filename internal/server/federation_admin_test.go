package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/ca"
)

// TestPeerAdmin: a peer is pinned from its CA file once; its own domain, a
// file that is not a CA and bad endpoints are refused; accept replaces the
// pin (and clears a presented CA); remove forgets it.
func TestPeerAdmin(t *testing.T) {
	ctx := context.Background()
	cfg := Defaults(t.TempDir())
	cfg.Domain = "a.example"
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	adm, err := OpenAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	newCA := func(domain string) (string, *ca.CA) {
		dir := t.TempDir()
		c, err := ca.Init(dir, domain, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, ca.CACertFile), c
	}
	bFile, bCA := newCA("b.example")
	b2File, b2CA := newCA("b.example")
	for _, tc := range []struct {
		domain, file, api, sip string
		want                   string
	}{
		{"a.example", bFile, "h:1", "h:2", ErrOwnDomain.Error()},
		{"b.example", filepath.Join(filepath.Dir(bFile), ca.ServerCertFile), "h:1", "h:2", "not a CA"},
		{"b.example", bFile, "nohostport", "h:2", "--api"},
		{"b.example", bFile, "h:1", ":5061", "--sip"},
		{"not a domain!", bFile, "h:1", "h:2", "domain"},
	} {
		if _, err := adm.AddPeer(ctx, tc.domain, tc.file, tc.api, tc.sip); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("AddPeer(%q, %s, %q, %q): %v, want %q", tc.domain, filepath.Base(tc.file), tc.api, tc.sip, err, tc.want)
		}
	}
	p, err := adm.AddPeer(ctx, "B.example", bFile, "h:1", "h:2")
	if err != nil || p.Domain != "b.example" || p.CASHA256 != ca.Fingerprint(bCA.Cert) {
		t.Fatalf("AddPeer: %+v %v", p, err)
	}
	if _, err := adm.AddPeer(ctx, "b.example", b2File, "h:1", "h:2"); err == nil || !strings.Contains(err.Error(), "federation accept") {
		t.Fatalf("second add: %v", err)
	}
	if err := adm.st.PeerPresented(ctx, "b.example", ca.Fingerprint(b2CA.Cert), time.Now()); err != nil {
		t.Fatal(err)
	}
	p, err = adm.AcceptPeerCA(ctx, "b.example", b2File, "", "h:3")
	if err != nil || p.CASHA256 != ca.Fingerprint(b2CA.Cert) || p.API != "h:1" || p.SIP != "h:3" || p.Presented != "" {
		t.Fatalf("accept: %+v %v", p, err)
	}
	ps, err := adm.Peers(ctx)
	if err != nil || len(ps) != 1 || ps[0].CASHA256 != ca.Fingerprint(b2CA.Cert) || ps[0].Presented != "" {
		t.Fatalf("peers: %+v %v", ps, err)
	}
	if _, err := adm.AcceptPeerCA(ctx, "c.example", bFile, "", ""); err == nil {
		t.Fatal("accept for an unknown peer")
	}
	if err := adm.RemovePeer(ctx, "b.example"); err != nil {
		t.Fatal(err)
	}
	if err := adm.RemovePeer(ctx, "b.example"); err == nil {
		t.Fatalf("second remove: %v", err)
	}
}
