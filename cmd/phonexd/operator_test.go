package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOperatorCommands runs group, policy and audit in process against one
// data directory, in order.
func TestOperatorCommands(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	for _, c := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"init", "--data", data, "--domain", "example.org"}, 0, "CA SHA-256", ""},
		{[]string{"user", "add", "--data", data, "a@example.org"}, 0, "created a@example.org", ""},
		{[]string{"user", "add", "--data", data, "b@example.org"}, 0, "created b@example.org", ""},
		{[]string{"group", "add", "--data", data, "team"}, 0, "added group team", ""},
		{[]string{"group", "add", "--data", data, "team"}, 1, "", "already exists"},
		{[]string{"group", "add-member", "--data", data, "team", "a@example.org"}, 0, "added a@example.org to group team", ""},
		{[]string{"group", "add-member", "--data", data, "team", "b@example.org", "--json"}, 0, `"result":"added"`, ""},
		{[]string{"group", "members", "--data", data, "team"}, 0, "a@example.org\nb@example.org\n2 members", ""},
		{[]string{"group", "list", "--data", data}, 0, "team   2", ""},
		{[]string{"group", "provision", "--data", data, "team"}, 0, "2 contact entries added", ""},
		{[]string{"group", "provision", "--data", data, "team", "--json"}, 0, `"kept":2`, ""},
		{[]string{"group", "members", "--data", data}, 2, "", "group members takes a group name"},
		{[]string{"policy", "set", "--data", data, "--group", "team", "message_rate", "5"}, 0, "set message_rate = 5 for group team", ""},
		{[]string{"policy", "set", "--data", data, "--account", "a@example.org", "max_stored_bytes", "2048"}, 0, "for account a@example.org", ""},
		{[]string{"policy", "set", "--data", data, "--account", "a@example.org", "max_stored_bytes", "lots"}, 1, "", "bad policy value"},
		{[]string{"policy", "set", "--data", data, "message_rate", "5"}, 1, "", "needs --account"},
		{[]string{"policy", "show", "--data", data, "--account", "a@example.org"}, 0, "max_stored_bytes     2048        account", ""},
		{[]string{"policy", "show", "--data", data, "--account", "a@example.org", "--json"}, 0, `"source":"group:team"`, ""},
		{[]string{"policy", "reset", "--data", data, "--account", "a@example.org", "max_stored_bytes"}, 0, "reset max_stored_bytes", ""},
		{[]string{"policy", "show", "--data", data}, 0, "message_rate         50", ""},
		{[]string{"group", "remove-member", "--data", data, "team", "b@example.org"}, 0, "removed b@example.org from group team", ""},
		{[]string{"group", "remove", "--data", data, "team"}, 0, "removed group team", ""},
		{[]string{"audit", "--data", data, "--since", "1h"}, 0, "group.provision", ""},
		{[]string{"audit", "--data", data, "--since", "yesterday"}, 2, "", "--since"},
		{[]string{"audit", "--data", data, "--limit", "1"}, 0, "group.remove  team", ""},
	} {
		var out, errs bytes.Buffer
		code := run(context.Background(), c.args, &out, &errs)
		// Compared with runs of white space as one space: column widths
		// follow the longest key.
		flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
		if code != c.code || !strings.Contains(flat(out.String()), flat(c.out)) || !strings.Contains(errs.String(), c.errs) {
			t.Errorf("phonexd %v: exit %d\nstdout: %s\nstderr: %s", c.args, code, out.String(), errs.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"audit", "--data", data, "--json"}, &out, &out); code != 0 {
		t.Fatal(out.String())
	}
	var es []struct {
		Time   time.Time `json:"time"`
		Actor  string    `json:"actor"`
		Action string    `json:"action"`
		Target string    `json:"target"`
	}
	if err := json.Unmarshal(out.Bytes(), &es); err != nil {
		t.Fatal(err)
	}
	// Two users, the group, two members, two provisionings, three policy
	// changes, a member out, the group removed.
	if len(es) != 12 || !strings.HasPrefix(es[0].Actor, "cli:") || es[0].Action != "user.add" || time.Since(es[0].Time) > time.Minute {
		t.Fatalf("audit: %+v", es)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"2h", now.Add(-2 * time.Hour), false},
		{"2026-11-30T10:00:00Z", time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC), false},
		{"2026-11-30", time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC), false},
		{"-2h", time.Time{}, true},
		{"last week", time.Time{}, true},
	} {
		got, err := parseSince(c.in, now)
		if (err != nil) != c.err || !got.Equal(c.want) {
			t.Errorf("parseSince(%q) = %v, %v", c.in, got, err)
		}
	}
}
