package dnszone

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/testpeer"
)

// TestLdnsVerifyZone: ldns-verify-zone checks every signature of the
// exported zone and the NSEC3 chain (coverage of every name, hashes,
// type bitmaps), independently of this package.
func TestLdnsVerifyZone(t *testing.T) {
	bin := testpeer.Require(t, "ldns-verify-zone")
	now := time.Now()
	z := testZone(t, &now)
	var entries []Entry
	for i, n := range []string{"+421900111222", "+421900111333", "+4412345", "+18005550100"} {
		entries = append(entries, Entry{E164: n, AOR: []string{"alice", "bob", "carol", "dave"}[i] + "@a.example",
			Keys: []DeviceKey{{Device: "phone", Cert: testCert(t, n)}}})
	}
	if err := z.SetEntries(entries); err != nil {
		t.Fatal(err)
	}
	if err := z.SetEndpoints(Endpoints{SIP: []string{"127.0.0.1:5061"}, API: []string{"[::1]:8443"}, TURN: []string{"127.0.0.1:3478"},
		TURNS: []string{"127.0.0.1:5349"}, CACert: testCert(t, "ca")}); err != nil {
		t.Fatal(err)
	}
	verifyWithLdns(t, bin, z)
	// A change patched into the snapshot (incremental.go): one number
	// gone, one new, one address's keys replaced.
	patches := z.patches
	entries = append(entries[1:], Entry{E164: "+421900111444", AOR: "erin@a.example"})
	entries[0].Keys = []DeviceKey{{Device: "laptop", Cert: testCert(t, "bob-laptop")}}
	if err := z.SetEntries(entries); err != nil {
		t.Fatal(err)
	}
	if z.patches != patches+1 {
		t.Fatal("the change was not patched in")
	}
	verifyWithLdns(t, bin, z)
}

func verifyWithLdns(t *testing.T, bin string, z *Zone) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "zone.db")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := z.WriteZone(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-V", "3", p).CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "Zone is verified and complete") {
		t.Fatalf("ldns-verify-zone: %v", err)
	}
}
