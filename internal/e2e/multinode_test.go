package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/phonex/phonex/internal/freeport"
	"github.com/phonex/phonex/internal/testpg"
)

// Three phonexd processes share one store and one NATS: messages,
// presence and failover cross nodes (docs/cluster.md).

// natsOn runs a NATS server in the test process on port.
func natsOn(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	s, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// clusterNode is one phonexd of a multi-node cluster.
type clusterNode struct {
	id       string
	cmd      *exec.Cmd
	api, sip string
	metrics  string // metrics and health checks
	logs     *lockedBuffer
}

// startNode runs phonexd serve on data; busURL "" leaves the bus to the
// data directory's configuration.
func startNode(t *testing.T, data, id, busURL string) *clusterNode {
	t.Helper()
	metrics := freeport.Addr(t)
	args := []string{"serve", "--data", data, "--api-addr", "127.0.0.1:0", "--sip-addr", "127.0.0.1:0",
		"--sip-phone-addr", "off", "--relay-addr", freeport.Addr(t), "--relay-tls-addr", "off", "--node-id", id, "--metrics-addr", metrics}
	if busURL != "" {
		args = append(args, "--bus", busURL)
	}
	cmd := exec.Command(filepath.Join(bin, "phonexd"), args...)
	stdout, _ := cmd.StdoutPipe()
	n := &clusterNode{id: id, cmd: cmd, metrics: metrics, logs: &lockedBuffer{}}
	cmd.Stderr = n.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(20 * time.Second)
	for n.sip == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("phonexd %s exited: %s", id, n.logs)
			}
			if rest, ok := strings.CutPrefix(l, "api: https://"); ok {
				n.api = strings.Fields(rest)[0]
			}
			if rest, ok := strings.CutPrefix(l, "sip: sips:"); ok {
				n.sip = strings.Fields(rest)[0]
			}
		case <-deadline:
			t.Fatalf("phonexd %s did not start", id)
		}
	}
	go io.Copy(io.Discard, stdout)
	t.Cleanup(func() {
		if n.cmd.ProcessState == nil {
			n.cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { n.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				n.cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", n.id, n.logs)
		}
	})
	return n
}

// kill ends the node with SIGKILL: nothing of it runs after.
func (n *clusterNode) kill() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

// frontDoor is what a load balancer in front of the nodes' APIs does: TCP
// forwarded to the node currently chosen.
type frontDoor struct {
	ln     net.Listener
	target atomic.Value // string
}

func newFrontDoor(t *testing.T, target string) *frontDoor {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &frontDoor{ln: ln}
	f.target.Store(target)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", f.target.Load().(string))
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				io.Copy(c, up)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *frontDoor) addr() string { return f.ln.Addr().String() }

// enrollAt enrolls (first) or logs in user/dev through the API at api.
func (c *cluster) enrollAt(user, dev, api string, first bool) {
	c.t.Helper()
	if first {
		act := decode[map[string]string](c.t, mustRun(c.t, nil, "phonexd", "user", "add", "--data", c.data, user+"@example.org", "--json"))
		mustRun(c.t, nil, "phonex", "enroll", user+"@example.org", "--profile", c.profile(user+"/"+dev), "--server", api,
			"--ca-file", filepath.Join(c.data, "ca.pem"), "--code", act["code"], "--device", dev, "--password-file", c.pw)
		return
	}
	mustRun(c.t, nil, "phonex", "login", user+"@example.org", "--profile", c.profile(user+"/"+dev), "--server", api,
		"--ca-file", filepath.Join(c.data, "ca.pem"), "--device", dev, "--password-file", c.pw)
}

// tcpPort is a free TCP port on loopback.
func tcpPort(t *testing.T) int {
	_, p, _ := net.SplitHostPort(freeport.Addr(t))
	n, _ := strconv.Atoi(p)
	return n
}

// checkStream fails unless got holds each of want exactly once, in order.
func checkStream(t *testing.T, who string, got, want []string) {
	t.Helper()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%s got %q, want exactly %q in order", who, got, want)
	}
}

// TestMultiNode: the nodes share one data directory, so one SQLite store
// (WAL mode, several processes).
func TestMultiNode(t *testing.T) {
	c := newCluster(t)
	port := tcpPort(t)
	multiNode(t, c, [3]string{c.data, c.data, c.data}, port, "nats://127.0.0.1:"+strconv.Itoa(port), nil)
}

// TestMultiNodePostgres: each node has its own data directory, the second
// and third made with 'phonexd init --join' from the first (which copies
// its bus setting), and the store is PostgreSQL, which also restarts under
// the running nodes.
func TestMultiNodePostgres(t *testing.T) {
	pg := testpg.DSN(t)
	tmp := t.TempDir()
	c := &cluster{t: t, tmp: tmp, data: filepath.Join(tmp, "node1"), pw: filepath.Join(tmp, "pw")}
	if err := os.WriteFile(c.pw, []byte("multi-node password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "phonexd", "init", "--data", c.data, "--domain", "example.org", "--host", "127.0.0.1", "--store", pg)
	port := tcpPort(t)
	conf, err := os.OpenFile(filepath.Join(c.data, "phonexd.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conf, "bus = nats://127.0.0.1:%d\n", port)
	conf.Close()
	dirs := [3]string{c.data, filepath.Join(tmp, "node2"), filepath.Join(tmp, "node3")}
	for _, d := range dirs[1:] {
		mustRun(t, nil, "phonexd", "init", "--data", d, "--join", c.data, "--host", "127.0.0.1")
	}
	multiNode(t, c, dirs, port, "", func() { testpg.Restart(t, nil) })
}

// multiNode runs three nodes from dirs on one NATS on port (busURL: the
// --bus flag, or "" for the configuration's): messages, presence and a
// call across nodes, kill -9 of a node, a NATS restart and, when
// restartStore is set, a restart of the store's server.
func multiNode(t *testing.T, c *cluster, dirs [3]string, port int, busURL string, restartStore func()) {
	ns := natsOn(t, port)
	n1 := startNode(t, dirs[0], "node-1", busURL)
	n2 := startNode(t, dirs[1], "node-2", busURL)
	n3 := startNode(t, dirs[2], "node-3", busURL)
	// bravo's first device reaches the cluster through a front door,
	// which an operator moves to another node when one dies.
	door := newFrontDoor(t, n2.api)

	c.enrollAt("alpha", "a1", n1.api, true)
	c.enrollAt("bravo", "b1", door.addr(), true)
	c.enrollAt("bravo", "b2", n3.api, false)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	c.mustPx("bravo/b2", "contacts")

	const alpha, bravo = "alpha@example.org", "bravo@example.org"
	a1 := c.watch("alpha/a1") // on node 1
	waitFor(t, "a1 ready", 20*time.Second, func() bool { return a1.has("ready", "", "") })
	b1 := c.listen("bravo/b1") // on node 2
	b2 := c.listen("bravo/b2") // on node 3
	waitFor(t, "b1 and b2 registered", 20*time.Second, func() bool { return b1.has("ready", "") && b2.has("ready", "") })

	t.Run("messages", func(t *testing.T) {
		// Each message must arrive within a few seconds: devices register
		// again every 15 s, which would deliver without any routing, so
		// five quick arrivals in a row show the wake-ups crossing nodes.
		isAcross := func(e event) bool { return strings.HasPrefix(e.Text, "across ") }
		var want []string
		for i := range 5 {
			s := fmt.Sprintf("across %d", i)
			c.mustPx("alpha/a1", "send", bravo, s)
			want = append(want, s)
			waitFor(t, s+" on b1 (node 2) and b2 (node 3)", 5*time.Second, func() bool {
				return len(b1.texts(isAcross)) >= i+1 && len(b2.texts(isAcross)) >= i+1
			})
		}
		time.Sleep(time.Second) // duplicates would show up now
		checkStream(t, "b1 on node 2", b1.texts(isAcross), want)
		checkStream(t, "b2 on node 3", b2.texts(isAcross), want)
	})

	t.Run("presence", func(t *testing.T) {
		// alpha's watcher on node 1 sees bravo's devices held by nodes 2 and 3.
		a1.waitShows(t, bravo, `online "" [b1 b2]`, 20*time.Second)
		c.mustPx("bravo/b1", "presence", "set", "away", "--note", "on node two")
		c.mustPx("bravo/b2", "presence", "set", "away", "--note", "on node two")
		a1.waitShows(t, bravo, `away "on node two" [b1 b2]`, 20*time.Second)
		c.mustPx("bravo/b1", "presence", "set", "online")
		c.mustPx("bravo/b2", "presence", "set", "online")
		a1.waitShows(t, bravo, `online "" [b1 b2]`, 20*time.Second)
	})

	t.Run("call across nodes", func(t *testing.T) {
		// alpha on node 1 calls bravo: node 1 hands the INVITE to node 2
		// (b1, which answers) and node 3 (b2, which rings and stops).
		a1.stop(syscall.SIGTERM)
		b1.stop()
		b2.stop()
		b2 = c.listen("bravo/b2")
		waitFor(t, "b2 ready", 20*time.Second, func() bool { return b2.has("ready", "") })
		ans := startPhonex(t, "answer", "--json", "--no-opus", "--profile", c.profile("bravo/b1"), "--password-file", c.pw)
		ans.waitEvent(t, "listening", 20*time.Second)
		call := startPhonex(t, "call", bravo, "--json", "--no-opus", "--profile", c.profile("alpha/a1"), "--password-file", c.pw)
		talk(t, call, ans, time.Second)
		ea, eb := call.wait(t, 60*time.Second), ans.wait(t, 60*time.Second)
		sa, sb := ea["secure"], eb["secure"]
		if sa.SAS == "" || sa.SAS != sb.SAS {
			t.Fatalf("SAS differ: caller %q callee %q", sa.SAS, sb.SAS)
		}
		if p := eb["connected"].Peer; p != alpha+"/a1" {
			t.Errorf("the callee sees the caller as %q, want alpha@example.org/a1", p)
		}
		waitFor(t, fmt.Sprintf("b2 (node 3) stops ringing (saw %q)", b2.calls()), 15*time.Second, func() bool {
			return strings.Join(b2.calls(), ",") == alpha+"/a1 ringing,"+alpha+"/a1 answered_elsewhere"
		})
		t.Logf("call from node 1 to node 2: SAS %s", sa.SAS)
		b1 = c.listen("bravo/b1")
		a1 = c.watch("alpha/a1")
		waitFor(t, "b1 and a1 back", 20*time.Second, func() bool { return b1.has("ready", "") && a1.has("ready", "", "") })
	})

	t.Run("kill -9 of the node holding b1", func(t *testing.T) {
		isStream := func(e event) bool { return strings.HasPrefix(e.Text, "stream ") }
		var want []string
		const total, killAt = 20, 8
		for i := range total {
			s := fmt.Sprintf("stream %02d", i)
			if r := c.px("alpha/a1", "send", bravo, s); r.code != 0 {
				t.Fatalf("send %q through node 1: exit %d: %s", s, r.code, r.err)
			}
			want = append(want, s) // acknowledged: the cluster answered 200
			if i == killAt {
				n2.kill()
			}
		}
		// b1's old listener lost its node; it comes back through the
		// front door, now pointing at node 3.
		b1.stop()
		door.target.Store(n3.api)
		b1again := c.listen("bravo/b1")
		waitFor(t, "b2 gets the whole stream", 30*time.Second, func() bool { return len(b2.texts(isStream)) >= total })
		waitFor(t, "b1 gets the whole stream after failover", 60*time.Second, func() bool {
			return len(b1.texts(isStream))+len(b1again.texts(isStream)) >= total
		})
		time.Sleep(2 * time.Second) // duplicates would show up now
		checkStream(t, "b2 on node 3", b2.texts(isStream), want)
		checkStream(t, "b1 across the failover", append(b1.texts(isStream), b1again.texts(isStream)...), want)
		// node 1 took bravo's b1 offline once node 2 went silent, and
		// online again once node 3 held it.
		a1.waitShows(t, bravo, `online "" [b1 b2]`, 30*time.Second)
		b1 = b1again
	})

	t.Run("NATS restart", func(t *testing.T) {
		ns.Shutdown()
		ns.WaitForShutdown()
		waitFor(t, "nodes notice the bus is down", 15*time.Second, func() bool {
			return strings.Contains(n1.logs.String(), "disconnected from NATS") && strings.Contains(n3.logs.String(), "disconnected from NATS")
		})
		for _, n := range []*clusterNode{n1, n3} {
			if code := httpStatus(t, "http://"+n.metrics+"/readyz"); code != 503 {
				t.Errorf("%s /readyz with the bus down: %d, want 503", n.id, code)
			}
		}
		// Accepted while the bus is down: stored, and delivered by the
		// node holding the devices once it reads its devices again.
		isOutage := func(e event) bool { return strings.HasPrefix(e.Text, "outage ") }
		var want []string
		for i := range 3 {
			s := fmt.Sprintf("outage %d", i)
			c.mustPx("alpha/a1", "send", bravo, s)
			want = append(want, s)
		}
		natsOn(t, port)
		waitFor(t, "nodes reconnect", 20*time.Second, func() bool {
			return strings.Count(n1.logs.String(), "reconnected to NATS")+strings.Count(n1.logs.String(), "connected to NATS") >= 2 &&
				strings.Contains(n3.logs.String(), "reconnected to NATS")
		})
		for _, n := range []*clusterNode{n1, n3} {
			waitFor(t, n.id+" ready again", 20*time.Second, func() bool { return httpStatus(t, "http://"+n.metrics+"/readyz") == 200 })
		}
		waitFor(t, "the outage's messages", 30*time.Second, func() bool {
			return len(b1.texts(isOutage)) >= 3 && len(b2.texts(isOutage)) >= 3
		})
		time.Sleep(time.Second)
		checkStream(t, "b1", b1.texts(isOutage), want)
		checkStream(t, "b2", b2.texts(isOutage), want)
		// Presence crosses nodes again.
		c.mustPx("bravo/b2", "presence", "set", "busy", "--note", "after the restart")
		c.mustPx("bravo/b1", "presence", "set", "busy", "--note", "after the restart")
		a1.waitShows(t, bravo, `busy "after the restart" [b1 b2]`, 20*time.Second)
	})

	if restartStore == nil {
		return
	}
	t.Run("store restart", func(t *testing.T) {
		isStore := func(e event) bool { return strings.HasPrefix(e.Text, "store ") }
		c.mustPx("alpha/a1", "send", bravo, "store before") // accepted: committed before the restart
		restartStore()
		// The first request after the restart may meet a connection the
		// server closed; the nodes answer again by themselves.
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := c.px("alpha/a1", "send", bravo, "store after")
			if r.code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("send after the store restart: exit %d: %s", r.code, r.err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		want := []string{"store before", "store after"}
		waitFor(t, "both messages on b1 and b2", 30*time.Second, func() bool {
			return len(b1.texts(isStore)) >= 2 && len(b2.texts(isStore)) >= 2
		})
		time.Sleep(time.Second)
		checkStream(t, "b1", b1.texts(isStore), want)
		checkStream(t, "b2", b2.texts(isStore), want)
	})
}
