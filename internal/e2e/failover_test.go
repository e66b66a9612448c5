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

// TestFailover: two phonexd processes serve one SQLite data directory;
// devices know both API addresses. After kill -9 of the node bravo's
// device is registered with, alpha's sends go to the other node and
// bravo's listen moves there and gets every message, in order, once.
func TestFailover(t *testing.T) {
	c := newCluster(t)
	setConf(t, c.data, "metrics_addr", "off")
	n1 := serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	n2 := serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	failover(t, c, n1, n2)
}

// TestFailoverPostgres: the same with two nodes on one PostgreSQL store,
// the second made with 'phonexd init --join' and running beside the first.
func TestFailoverPostgres(t *testing.T) {
	pg := testpg.DSN(t)
	tmp := t.TempDir()
	c := &cluster{t: t, tmp: tmp, data: filepath.Join(tmp, "node1"), pw: filepath.Join(tmp, "pw")}
	if err := os.WriteFile(c.pw, []byte("failover password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "phonexd", "init", "--data", c.data, "--domain", "example.org", "--host", "127.0.0.1", "--store", pg)
	setConf(t, c.data, "metrics_addr", "off")
	node2 := filepath.Join(tmp, "node2")
	mustRun(t, nil, "phonexd", "init", "--data", node2, "--join", c.data, "--host", "127.0.0.1")
	setConf(t, node2, "metrics_addr", "off")
	n1 := serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	n2 := serveOn(t, node2, freeport.Addr(t), freeport.Addr(t))
	failover(t, c, n1, n2)
}

// failover enrolls alpha and bravo with both nodes' API addresses, kills
// n1 under bravo's listen and checks what arrives through n2.
func failover(t *testing.T, c *cluster, n1, n2 *node) {
	t.Helper()
	servers := n1.api + "," + n2.api
	for _, u := range []string{"alpha", "bravo"} {
		act := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, u+"@example.org", "--json"))
		mustRun(t, nil, "phonex", "enroll", u+"@example.org", "--profile", c.profile(u+"/d"), "--server", servers,
			"--ca-file", filepath.Join(c.data, "ca.pem"), "--code", act["code"], "--device", "d", "--password-file", c.pw)
	}
	got := decode[map[string]any](t, mustRun(t, nil, "phonex", "servers", "--profile", c.profile("bravo/d"), "--json"))
	if s, _ := got["servers"].([]any); len(s) != 2 || s[0] != n1.api || s[1] != n2.api {
		t.Fatalf("servers of the profile: %v", got)
	}
	c.mustPx("alpha/d", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/d", "contacts", "add", "alpha@example.org")

	b := c.listen("bravo/d")
	waitFor(t, "bravo registered", 30*time.Second, func() bool { return b.has("ready", "") })
	c.mustPx("alpha/d", "send", "bravo@example.org", "before")
	waitFor(t, "delivery through node 1", 30*time.Second, func() bool { return len(b.texts(all)) == 1 })

	n1.cmd.Process.Kill()
	n1.cmd.Wait()
	killed := time.Now()
	for _, s := range []string{"after 1", "after 2", "after 3"} {
		c.mustPx("alpha/d", "send", "bravo@example.org", s)
	}
	waitFor(t, "delivery through node 2", 45*time.Second, func() bool { return len(b.texts(all)) >= 4 })
	t.Logf("kill -9 of node 1 to the last message delivered through node 2: %v", time.Since(killed).Round(10*time.Millisecond))
	time.Sleep(time.Second) // a duplicate would show by now
	want := "before|after 1|after 2|after 3"
	if g := strings.Join(b.texts(all), "|"); g != want {
		t.Fatalf("bravo got %q, want %q (in order, once)", g, want)
	}
}
