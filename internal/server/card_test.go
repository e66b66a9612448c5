package server_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/phonex/phonex/internal/qrcard"
	"github.com/phonex/phonex/internal/server"
)

// The card the panel shows for a new account decodes to the account, the
// node's address, its CA fingerprint and the code.
func TestAdminEnrollmentCard(t *testing.T) {
	ctx := context.Background()
	cfg := server.Defaults(t.TempDir())
	cfg.Domain, cfg.APIAddr, cfg.Hosts = "example.org", "0.0.0.0:8443", []string{"node1.example.org"}
	if _, err := server.Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	adm, err := server.OpenAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	act, err := adm.AddUser(ctx, "alpha@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := adm.EnrollmentCard(act)
	if err != nil {
		t.Fatal(err)
	}
	_, fp, _ := server.EnrollTarget(cfg)
	var png bytes.Buffer
	if err := c.PNG(&png); err != nil {
		t.Fatal(err)
	}
	got, err := qrcard.DecodeImage(&png)
	want := qrcard.Card{User: "alpha@example.org", Server: "node1.example.org:8443", CA: fp, Code: act.Code}
	if err != nil || got != want {
		t.Fatalf("card %+v %v, want %+v", got, err, want)
	}
}
