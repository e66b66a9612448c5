package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/server"
)

func TestEnrollTarget(t *testing.T) {
	cfg := server.Defaults(t.TempDir())
	cfg.Domain = "example.org"
	cfg.Hosts = []string{"node1.example.org", "10.0.0.1"}
	if _, err := server.Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ api, want string }{
		{"127.0.0.1:8443", "127.0.0.1:8443"},
		{"10.0.0.1:443", "10.0.0.1:443"},
		{"0.0.0.0:8443", "node1.example.org:8443"},
		{"[::]:8443", "node1.example.org:8443"},
		{":8443", "node1.example.org:8443"},
	} {
		cfg.APIAddr = c.api
		addr, fp, err := enrollTarget(cfg)
		if err != nil || addr != c.want || len(fp) != 64 {
			t.Errorf("api_addr %s: %q %q %v, want %q", c.api, addr, fp, err, c.want)
		}
	}
}

// TestDispatch runs the command in process: exit codes and where the words
// go.
func TestDispatch(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	for _, c := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{nil, 2, "", "phonexd init"},
		{[]string{"--version"}, 0, "phonexd ", ""},
		{[]string{"help", "device"}, 0, "usage: phonexd device", ""},
		{[]string{"sreve"}, 2, "", `did you mean "serve"`},
		{[]string{"user"}, 2, "", "missing subcommand"},
		{[]string{"user", "list", "--data", data}, 1, "", "phonexd: "},
		{[]string{"init", "--data", data, "--domain", "example.org"}, 0, "CA SHA-256 fingerprint", ""},
		{[]string{"user", "add", "--data", data, "a@example.org"}, 0, "enroll with: phonex enroll a@example.org --server 127.0.0.1:8443 --ca-fingerprint ", ""},
		{[]string{"user", "list", "--data", data}, 0, "\n1 user\n", ""},
		{[]string{"dns", "ds", "--data", data}, 0, "example.org.\t3600\tIN\tDS\t", ""},
		{[]string{"dns", "export", "--data", data}, 0, "NSEC3PARAM\t1 0 0 -", ""},
		{[]string{"dns", "keygen", "--data", data, "--json"}, 0, `"zone":"example.org."`, ""},
		{[]string{"dns", "sign"}, 2, "", `phonexd dns ds`},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), c.args, &out, &errs)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errs.String(), c.errs) {
			t.Errorf("phonexd %v: exit %d\nstdout: %s\nstderr: %s", c.args, code, out.String(), errs.String())
		}
	}
}

func TestAdminCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	t.Setenv("PHONEXD_ADMIN_PASSWORD", "an administrator password")
	for _, c := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"init", "--data", data, "--domain", "example.org"}, 0, "", ""},
		{[]string{"admin"}, 2, "", "missing subcommand"},
		{[]string{"admin", "ad"}, 2, "", `did you mean "admin add"`},
		{[]string{"admin", "add", "--data", data}, 2, "", "one administrator NAME"},
		{[]string{"admin", "add", "--data", data, "root"}, 0, "otpauth://totp/PhoneX%20example.org:root?", ""},
		{[]string{"admin", "add", "--data", data, "root"}, 1, "", "already exists"},
		{[]string{"admin", "add", "--data", data, "bad name"}, 1, "", "administrator name"},
		{[]string{"admin", "list", "--data", data, "--json"}, 0, `"admin":"root"`, ""},
		{[]string{"admin", "reset", "--data", data, "root", "--json"}, 0, `"totp_secret"`, ""},
		{[]string{"admin", "remove", "--data", data, "root"}, 0, "removed root", ""},
		{[]string{"admin", "remove", "--data", data, "root"}, 1, "", "not found"},
		{[]string{"admin", "list", "--data", data}, 0, "0 administrators", ""},
		{[]string{"serve", "--data", data, "--admin-addr", "nonsense"}, 1, "", "admin"},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), c.args, &out, &errs)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errs.String(), c.errs) {
			t.Errorf("phonexd %v: exit %d\nstdout: %s\nstderr: %s", c.args, code, out.String(), errs.String())
		}
	}
}
