package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/testpg"
)

// TestPostgresRestart: the PostgreSQL server under a running node
// restarts. Messages accepted before are delivered, and the node serves
// again by itself once the server is back, without a restart of its own.
func TestPostgresRestart(t *testing.T) {
	pg := testpg.DSN(t)
	tmp := t.TempDir()
	c := &cluster{t: t, tmp: tmp, data: filepath.Join(tmp, "data"), pw: filepath.Join(tmp, "pw")}
	if err := os.WriteFile(c.pw, []byte("restart password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "phonexd", "init", "--data", c.data, "--domain", "example.org", "--host", "127.0.0.1", "--store", pg)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	c.mustPx("alpha/a1", "send", "bravo@example.org", "before the restart")

	testpg.Restart(t, nil)

	b1 := c.listen("bravo/b1")
	defer func() {
		if t.Failed() {
			b1.mu.Lock()
			t.Logf("listener stderr: %s\nevents: %+v\nnode: %s", b1.stderr.String(), b1.events, c.n.logs)
			b1.mu.Unlock()
		}
	}()
	waitFor(t, "the message accepted before the restart", 30*time.Second, func() bool { return len(b1.texts(all)) >= 1 })
	// The first request after the restart may meet a connection the
	// server closed; the node answers again within a few seconds.
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := c.px("alpha/a1", "send", "bravo@example.org", "after the restart")
		if r.code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("send after the restart: exit %d: %s\nnode: %s", r.code, r.err, c.n.logs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	waitFor(t, "delivery after the restart", 20*time.Second, func() bool {
		return strings.Contains(strings.Join(b1.texts(all), "|"), "after the restart")
	})
	if got := b1.texts(all); got[0] != "before the restart" {
		t.Fatalf("b1 got %q", got)
	}
}
