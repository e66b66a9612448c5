package e2e

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestFailoverTime measures, for bench/failover.sh, how long a device is
// without its messages when the node holding its connection dies: from
// kill -9 of that node to the device delivering a message accepted
// meanwhile, through another node. The device is restarted against the
// other node at once (what a client that takes several addresses does on
// a dead connection), so the figure is the cluster's part plus the
// device's start (profile unlock, API, TLS, REGISTER). It prints figures
// and checks nothing timed.
func TestFailoverTime(t *testing.T) {
	if os.Getenv("PHONEX_BENCH_FAILOVER") == "" {
		t.Skip("a measurement: bash bench/failover.sh runs it (PHONEX_BENCH_FAILOVER=1)")
	}
	rounds := 5
	if n, err := strconv.Atoi(os.Getenv("ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	c := newCluster(t)
	port := tcpPort(t)
	busURL := "nats://127.0.0.1:" + strconv.Itoa(port)
	natsOn(t, port)
	n1 := startNode(t, c.data, "node-1", busURL)
	holders := []*clusterNode{startNode(t, c.data, "node-2", busURL), startNode(t, c.data, "node-3", busURL)}
	door := newFrontDoor(t, holders[0].api)
	c.enrollAt("alpha", "a1", n1.api, true)
	c.enrollAt("bravo", "b1", door.addr(), true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	has := func(l *listener, text string) bool {
		return len(l.texts(func(e event) bool { return e.Text == text })) > 0
	}

	b1 := c.listen("bravo/b1")
	waitFor(t, "b1 ready", 30*time.Second, func() bool { return b1.has("ready", "") })
	var totals, readies []time.Duration
	next := 0
	for r := range rounds {
		warm := fmt.Sprintf("warm %d", r)
		c.mustPx("alpha/a1", "send", "bravo@example.org", warm)
		waitFor(t, warm, 30*time.Second, func() bool { return has(b1, warm) })
		dead := holders[next]
		next = 1 - next
		start := time.Now()
		dead.kill()
		door.target.Store(holders[next].api)
		b1.stop()
		b1 = c.listen("bravo/b1")
		after := fmt.Sprintf("after %d", r)
		c.mustPx("alpha/a1", "send", "bravo@example.org", after) // accepted by node 1 while bravo is away
		var ready time.Duration
		waitFor(t, after, 60*time.Second, func() bool {
			if ready == 0 && b1.has("ready", "") {
				ready = time.Since(start)
			}
			return has(b1, after)
		})
		total := time.Since(start)
		if ready == 0 {
			ready = total
		}
		totals, readies = append(totals, total), append(readies, ready)
		t.Logf("round %d: kill -9 of %s to delivery through %s: %v (device registered again after %v)", r+1, dead.id, holders[next].id,
			total.Round(time.Millisecond), ready.Round(time.Millisecond))
		holders[1-next] = startNode(t, c.data, fmt.Sprintf("node-%d", r+4), busURL) // the killed node, restarted
	}
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("| rounds | failover, median | failover, max | of which the device's restart to REGISTER, median |\n|---|---|---|---|\n")
	fmt.Printf("| %d | %v | %v | %v |\n", rounds, med(totals).Round(time.Millisecond), slices.Max(totals).Round(time.Millisecond),
		med(readies).Round(time.Millisecond))
}
