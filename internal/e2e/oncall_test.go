package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPresenceOnCall: a contact watching with 'phonex listen --json' sees
// both people of a call by address "oncall" while it lasts (the node
// knows from the dialog it routes, nobody publishes it), and their earlier
// state once it is over.
func TestPresenceOnCall(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.device("charlie", "c1", true)
	for _, pair := range [][2]string{{"alpha", "bravo"}, {"charlie", "alpha"}, {"charlie", "bravo"}} {
		c.mustPx(pair[0]+"/"+pair[0][:1]+"1", "contacts", "add", pair[1]+"@example.org")
		c.mustPx(pair[1]+"/"+pair[1][:1]+"1", "contacts", "add", pair[0]+"@example.org")
	}
	const alpha, bravo = "alpha@example.org", "bravo@example.org"
	// alpha's device listens (online) and calls from the same profile;
	// bravo's only answers: online while it waits for the call.
	a1 := c.listen("alpha/a1")
	waitFor(t, "alpha/a1 ready", 20*time.Second, func() bool { return a1.first("ready").Type == "ready" })
	watcher := c.watch("charlie/c1")
	watcher.waitShows(t, alpha, `online "" [a1]`, 20*time.Second)
	c.mustPx("alpha/a1", "presence", "set", "away", "--note", "lunch")
	watcher.waitShows(t, alpha, `away "lunch" [a1]`, 20*time.Second)

	rec := filepath.Join(c.tmp, "heard-by-bravo.wav")
	ans := startPhonex(t, "answer", "--json", "--no-opus", "--record", rec, "--profile", c.profile("bravo/b1"), "--password-file", c.pw)
	ans.waitEvent(t, "listening", 20*time.Second)
	watcher.waitShows(t, bravo, `online "" [b1]`, 20*time.Second)
	call := startPhonex(t, "call", bravo, "--json", "--no-opus", "--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	call.waitEvent(t, "secure", 30*time.Second)
	// The call lasts until both show on a call, then alpha hangs up.
	watcher.waitShows(t, alpha, `oncall "" [a1]`, 30*time.Second)
	watcher.waitShows(t, bravo, `oncall "" [b1]`, 30*time.Second)
	talk(t, call, ans, time.Second)
	a, b := call.wait(t, 30*time.Second), ans.wait(t, 30*time.Second)
	if a["secure"].SAS == "" || a["secure"].SAS != b["secure"].SAS {
		t.Fatalf("SAS %q and %q", a["secure"].SAS, b["secure"].SAS)
	}
	// Over: alpha is back to her own state; bravo's answer has ended and
	// unregistered, so bravo is offline, not left on a call.
	watcher.waitShows(t, alpha, `away "lunch" [a1]`, 30*time.Second)
	watcher.waitShows(t, bravo, `offline "" []`, 30*time.Second)
	// Each change once, in order.
	var seen []string
	for _, s := range watcher.of(alpha) {
		seen = append(seen, s.String())
	}
	if want := []string{`online "" [a1]`, `away "lunch" [a1]`, `oncall "" [a1]`, `away "lunch" [a1]`}; strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("charlie saw alpha as %q, want %q", seen, want)
	}
	t.Logf("charlie saw alpha: %v", watcher.of(alpha))
	t.Logf("charlie saw bravo: %v", watcher.of(bravo))
}
