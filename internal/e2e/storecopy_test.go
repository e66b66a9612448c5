package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
	"github.com/phonex/phonex/internal/testpg"
)

// TestStoreCopyToPostgres moves a SQLite node with enrolled devices and
// messages waiting to PostgreSQL: after 'phonexd store copy' and a restart
// of the node on the PostgreSQL store, the devices work on without
// enrolling again and the messages that waited before the copy are
// delivered, in order.
func TestStoreCopyToPostgres(t *testing.T) {
	pg := testpg.DSN(t)
	c := newCluster(t)
	apiAddr, sipAddr := freeport.Addr(t), freeport.Addr(t)
	c.n = serveOn(t, c.data, apiAddr, sipAddr)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.device("bravo", "b2", false)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")

	// One message while bravo is online starts the conversation; two more
	// wait on the node for b1 and b2, which are offline.
	b1 := c.listen("bravo/b1")
	waitFor(t, "b1 registered", 30*time.Second, func() bool { return b1.has("ready", "") })
	c.mustPx("alpha/a1", "send", "bravo@example.org", "online before the copy")
	waitFor(t, "online delivery", 30*time.Second, func() bool { return len(b1.texts(all)) == 1 })
	b1.stop()
	for _, s := range []string{"waiting 1", "waiting 2"} {
		c.mustPx("alpha/a1", "send", "bravo@example.org", s)
	}
	c.n.stop(t)

	sum := decode[struct {
		Rows map[string]int64 `json:"rows"`
	}](t, mustRun(t, nil, "phonexd", "store", "copy", "--from", "sqlite:"+c.data, "--to", pg, "--json"))
	if sum.Rows["accounts"] != 2 || sum.Rows["devices"] != 3 || sum.Rows["contacts"] != 2 || sum.Rows["deliveries"] == 0 || sum.Rows["prekeys"] == 0 {
		t.Fatalf("copied %v", sum.Rows)
	}
	// The operator points the node's configuration at PostgreSQL and
	// moves the SQLite file away: the node must not need it.
	conf := filepath.Join(c.data, "phonexd.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\nstore = %s\n", pg)
	f.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Rename(filepath.Join(c.data, "phonexd.db"+suffix), filepath.Join(c.tmp, "moved.db"+suffix))
	}
	c.n = serveOn(t, c.data, apiAddr, sipAddr)
	if _, err := os.Stat(filepath.Join(c.data, "phonexd.db")); err == nil {
		t.Fatal("the node on PostgreSQL opened a SQLite database")
	}

	// The devices' debug log (deferred and duplicate messages, renewals)
	// is printed if b2 does not get everything.
	t.Setenv("PHONEX_DEBUG", "1")
	started := time.Now()
	b1 = c.listen("bravo/b1")
	b2 := c.listen("bravo/b2")
	want := []string{"waiting 1", "waiting 2"}
	// b2 was added by 'phonex login' and listens here for the first time:
	// its unlock and three first ratchet messages take longest on a loaded
	// machine, hence the longer bound; what it saw is printed if it fails.
	waitFor(t, "b1 gets what waited", 20*time.Second, func() bool { return len(b1.texts(all)) == 2 })
	deadline := time.Now().Add(45 * time.Second)
	for len(b2.texts(all)) != 3 {
		if time.Now().After(deadline) {
			b2.stop()
			b2.mu.Lock()
			t.Fatalf("timed out waiting for b2 to get everything (%v after both started listening): events %+v; stderr: %s\nnode log:\n%s",
				time.Since(started), b2.events, b2.stderr.String(), c.n.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("b1 and b2 had what waited %v after they started listening", time.Since(started))
	if got := b1.texts(all); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("b1 got %q, want %q", got, want)
	}
	if got := b2.texts(all); strings.Join(got, "|") != "online before the copy|"+strings.Join(want, "|") {
		t.Fatalf("b2 got %q", got)
	}
	// New traffic both ways on the PostgreSQL node.
	c.mustPx("alpha/a1", "send", "bravo@example.org", "after the copy")
	waitFor(t, "delivery after the copy", 15*time.Second, func() bool { return len(b1.texts(all)) == 3 })
	a1 := c.listen("alpha/a1")
	waitFor(t, "a1 registered", 30*time.Second, func() bool { return a1.has("ready", "") })
	c.mustPx("bravo/b1", "send", "alpha@example.org", "reply from postgres")
	waitFor(t, "reply", 15*time.Second, func() bool {
		return strings.Contains(strings.Join(a1.texts(func(e event) bool { return !e.Outgoing }), "|"), "reply from postgres")
	})
	if out := mustRun(t, nil, "phonexd", "device", "list", "--data", c.data, "bravo@example.org"); !strings.Contains(out, "2 devices") {
		t.Fatalf("device list on the PostgreSQL node: %s", out)
	}
}
