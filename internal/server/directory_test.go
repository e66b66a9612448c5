package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/e164"
	"github.com/phonex/phonex/internal/store"
)

// The zone reads what the directory published from the store: an export
// (as 'phonexd dns export' makes) holds the number's NAPTR and its keys.
func TestDirectoryIsTheZoneSource(t *testing.T) {
	ctx := context.Background()
	cfg := Defaults(t.TempDir())
	cfg.Domain = "a.example"
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	a, err := n.st.CreateAccount(ctx, "alice@a.example", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert := deviceCert(t)
	if err := n.st.PublishDir(ctx, store.DirEntry{E164: "+421900111222", Hash: e164.Hash("+421900111222"), AccountID: a.ID, AOR: "alice@a.example",
		Keys: []store.DirKey{{Device: "phone", Cert: cert}}, Published: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var zone bytes.Buffer
	if err := n.ExportZone(ctx, &zone); err != nil {
		t.Fatal(err)
	}
	z := zone.String()
	if !strings.Contains(z, e164.ENUMDomain("+421900111222", "e164.a.example")) || !strings.Contains(z, "NAPTR") || !strings.Contains(z, "SMIMEA") ||
		!strings.Contains(z, "alice@a.example") {
		t.Fatalf("zone without the published number:\n%s", z)
	}
}
