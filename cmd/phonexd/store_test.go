package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func phonexd(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := run(context.Background(), args, &out, &errs); code != wantCode {
		t.Fatalf("phonexd %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out.String(), errs.String())
	}
	return out.String() + errs.String()
}

// A SQLite node's accounts move to PostgreSQL with store copy; the admin
// commands then work on PostgreSQL, a second node joins the cluster on it,
// and migrate and init --store make and update the schema.
func TestStoreCommands(t *testing.T) {
	pg := testpg.DSN(t)
	dir := t.TempDir()
	one := filepath.Join(dir, "one")
	phonexd(t, 0, "init", "--data", one, "--domain", "example.org")
	phonexd(t, 0, "user", "add", "--data", one, "alpha@example.org")
	phonexd(t, 0, "user", "add", "--data", one, "bravo@example.org")

	out := phonexd(t, 0, "store", "copy", "--from", "sqlite:"+one, "--to", pg, "--json")
	var sum struct {
		From  string           `json:"from"`
		Rows  map[string]int64 `json:"rows"`
		Total int64            `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if sum.Rows["accounts"] != 2 || sum.Rows["codes"] != 2 || sum.Rows["devices"] != 0 || sum.Rows["audit_log"] != 2 || sum.Total != 6 || sum.From != "sqlite:"+one {
		t.Fatalf("copy summary %+v", sum)
	}
	if out := phonexd(t, 1, "store", "copy", "--from", one, "--to", pg); !strings.Contains(out, "not empty") {
		t.Fatalf("copy into a populated store: %s", out)
	}
	if out := phonexd(t, 0, "user", "list", "--data", one, "--store", pg); !strings.Contains(out, "\n2 users\n") {
		t.Fatalf("user list on postgres: %s", out)
	}

	// A second node joins on the shared store with the CA and sealing key
	// of the first and a server certificate of its own.
	two := filepath.Join(dir, "two")
	phonexd(t, 1, "init", "--data", two, "--join", one) // the first node's store is its own SQLite
	out = phonexd(t, 0, "init", "--data", two, "--join", one, "--store", pg, "--host", "node2.example.org")
	if !strings.Contains(out, "domain example.org") {
		t.Fatalf("join: %s", out)
	}
	for _, f := range []string{ca.CACertFile, ca.CAKeyFile, server.SealKeyFile} {
		a, _ := os.ReadFile(filepath.Join(one, f))
		b, err := os.ReadFile(filepath.Join(two, f))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s not shared with the joining node (%v)", f, err)
		}
	}
	cert, err := ca.ReadCert(filepath.Join(two, ca.ServerCertFile))
	if err != nil || !strings.Contains(strings.Join(cert.DNSNames, ","), "node2.example.org") {
		t.Fatalf("joining node's server certificate: %v %v", cert.DNSNames, err)
	}
	if out := phonexd(t, 0, "user", "list", "--data", two, "--json"); !strings.Contains(out, "bravo@example.org") {
		t.Fatalf("user list on the joined node: %s", out)
	}
	phonexd(t, 0, "user", "disable", "--data", two, "bravo@example.org")
	if out := phonexd(t, 0, "user", "list", "--data", one, "--store", pg); !strings.Contains(out, "disabled") {
		t.Fatalf("a change on one node not seen through the other: %s", out)
	}
	if out := phonexd(t, 0, "migrate", "--data", two); !strings.Contains(out, "schema up to date") {
		t.Fatalf("migrate: %s", out)
	}

	// init --store makes the schema of an empty database.
	three := filepath.Join(dir, "three")
	pg3 := testpg.DSN(t)
	phonexd(t, 0, "init", "--data", three, "--domain", "example.net", "--store", pg3)
	phonexd(t, 0, "user", "add", "--data", three, "x@example.net")
	if out := phonexd(t, 0, "migrate", "--store", pg3, "--json"); !strings.Contains(out, `"migrated"`) {
		t.Fatalf("migrate --store: %s", out)
	}
	// A new cluster is not made on another cluster's store.
	if out := phonexd(t, 1, "init", "--data", filepath.Join(dir, "four"), "--domain", "example.com", "--store", pg3); !strings.Contains(out, "--join") {
		t.Fatalf("init on a store in use: %s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "four", ca.CAKeyFile)); err == nil {
		t.Fatal("a refused init made a CA key")
	}
	if _, err := os.Stat(filepath.Join(three, server.DBFile)); err == nil {
		t.Fatal("a node on PostgreSQL made a SQLite database too")
	}
	if out := phonexd(t, 2, "store", "copy", "--from", pg3); !strings.Contains(out, "--to") {
		t.Fatalf("copy without --to: %s", out)
	}
}
