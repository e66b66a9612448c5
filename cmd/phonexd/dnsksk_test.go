package main

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// TestDNSKeyCommands: the KSK rollover steps in order, each printing the
// DS records, refusing to run out of order or early.
func TestDNSKeyCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	ctx := context.Background()
	if code := run(ctx, []string{"init", "--data", data, "--domain", "a.example"}, io.Discard, io.Discard); code != 0 {
		t.Fatal("init failed")
	}
	phx := func(args ...string) (string, string, int) {
		var out, errs strings.Builder
		code := run(ctx, append(args, "--data", data), &out, &errs)
		return out.String(), errs.String(), code
	}
	status := func() map[string]any {
		out, errs, code := phx("dns", "status", "--json")
		if code != 0 {
			t.Fatalf("status: %s", errs)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if s := status(); s["step"] != "none" || len(s["ds"].([]any)) != 1 {
		t.Fatalf("status: %v", s)
	}
	for _, c := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"dns", "ksk-activate"}, 1, "no pre-published KSK"},
		{[]string{"dns", "ksk-retire"}, 1, "no outgoing KSK"},
		{[]string{"dns", "ksk-prepublish"}, 0, "the parent zone should publish"},
		{[]string{"dns", "ksk-prepublish"}, 1, "in progress"},
		{[]string{"dns", "ksk-activate"}, 1, "too early"},
		{[]string{"dns", "ksk-activate", "--force"}, 0, "still signs until ksk-retire"},
		{[]string{"dns", "ksk-retire"}, 1, "too early"},
		{[]string{"dns", "ksk-retire", "--parent-ds-ttl", "0s"}, 0, "alone signs"},
		{[]string{"dns", "zsk-roll"}, 0, "pre-published"},
		{[]string{"dns", "zsk-roll"}, 1, "under way"},
	} {
		out, errs, code := phx(c.args...)
		if code != c.code || !strings.Contains(out+errs, c.out) {
			t.Fatalf("%v: exit %d\n%s%s", c.args, code, out, errs)
		}
	}
	if s := status(); s["step"] != "none" || len(s["ds"].([]any)) != 1 {
		t.Fatalf("status after the rollover: %v", s)
	}
}
