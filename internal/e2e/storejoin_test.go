package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
	"github.com/phonex/phonex/internal/testpg"
)

// TestJoinedNodeTakesOver: two nodes of one cluster share a PostgreSQL
// store; the second was made with 'phonexd init --join' from the first's
// directory. The first is killed (kill -9) with messages waiting for an
// offline device; the second takes over its addresses, and the devices
// carry on against it without enrolling again: the waiting messages are
// delivered, new ones flow, and a new device logs in with the account
// password (which needs the shared sealing key).
func TestJoinedNodeTakesOver(t *testing.T) {
	pg := testpg.DSN(t)
	tmp := t.TempDir()
	c := &cluster{t: t, tmp: tmp, data: filepath.Join(tmp, "node1"), pw: filepath.Join(tmp, "pw")}
	if err := os.WriteFile(c.pw, []byte("shared cluster password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "phonexd", "init", "--data", c.data, "--domain", "example.org", "--host", "127.0.0.1", "--store", pg)
	apiAddr, sipAddr := freeport.Addr(t), freeport.Addr(t)
	c.n = serveOn(t, c.data, apiAddr, sipAddr)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	b1 := c.listen("bravo/b1")
	waitFor(t, "b1 registered", 30*time.Second, func() bool { return b1.has("ready", "") })
	c.mustPx("alpha/a1", "send", "bravo@example.org", "via node one")
	waitFor(t, "online delivery", 30*time.Second, func() bool { return len(b1.texts(all)) == 1 })
	b1.stop()
	c.mustPx("alpha/a1", "send", "bravo@example.org", "waiting 1")
	c.mustPx("alpha/a1", "send", "bravo@example.org", "waiting 2")
	c.n.cmd.Process.Kill()
	c.n.cmd.Wait()

	node2 := filepath.Join(tmp, "node2")
	mustRun(t, nil, "phonexd", "init", "--data", node2, "--join", c.data, "--host", "127.0.0.1")
	c.n = serveOn(t, node2, apiAddr, sipAddr)
	c.data = node2 // admin commands and the CA file from the second node from here on

	b1 = c.listen("bravo/b1")
	waitFor(t, "waiting messages from the second node", 20*time.Second, func() bool { return len(b1.texts(all)) == 2 })
	if got := strings.Join(b1.texts(all), "|"); got != "waiting 1|waiting 2" {
		t.Fatalf("b1 got %q", got)
	}
	c.device("bravo", "b2", false) // password login: the sealed secrets open with the copied key
	b2 := c.listen("bravo/b2")
	waitFor(t, "b2 registered", 30*time.Second, func() bool { return b2.has("ready", "") })
	c.mustPx("alpha/a1", "send", "bravo@example.org", "via node two")
	waitFor(t, "new message on both devices", 20*time.Second, func() bool {
		return len(b1.texts(all)) == 3 && len(b2.texts(func(e event) bool { return e.Text == "via node two" })) == 1
	})
	if out := mustRun(t, nil, "phonexd", "device", "list", "--data", node2, "bravo@example.org"); !strings.Contains(out, "2 devices") {
		t.Fatalf("device list on the second node: %s", out)
	}
}
