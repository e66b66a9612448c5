package proxy

// The cluster tests live in files named after memory_test.go: they start
// NATS servers and buses whose goroutines wind down after each test, which
// the process-wide measurement of TestIdleConnectionMemory would count.

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/phonex/phonex/internal/bus"
)

// nodes are proxies sharing one store and one NATS server, as the nodes
// of a cluster do.
func clusterRigs(t testing.TB, n int, tweaks ...func(*Config)) []*rig {
	rs, _ := clusterRigsNATS(t, n, tweaks...)
	return rs
}

// clusterRigsNATS is clusterRigs with the NATS server, for tests that stop it.
func clusterRigsNATS(t testing.TB, n int, tweaks ...func(*Config)) ([]*rig, *natsserver.Server) {
	t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(ns.Shutdown)
	join := func(id string) *bus.Bus {
		b, err := bus.Connect(bus.Config{URL: ns.ClientURL(), Node: id, Cluster: domain})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	first, _ := newRig(t, func(c *Config) {
		c.Bus = join("n1")
		for _, f := range tweaks {
			f(c)
		}
	})
	rigs := []*rig{first}
	for i := 2; i <= n; i++ {
		rigs = append(rigs, first.sibling(join(fmt.Sprintf("n%d", i))))
	}
	for _, r := range rigs {
		r.p.cluster.bus.Flush(time.Second)
	}
	return rigs, ns
}

// sibling is another proxy on r's store, CA and configuration.
func (r *rig) sibling(b *bus.Bus) *rig {
	r.t.Helper()
	cfg := r.p.cfg
	cfg.Bus, cfg.Presence, cfg.Calls = b, nil, nil
	p, err := New(cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.t.Fatal(err)
	}
	s := *r
	s.p, s.addr = p, ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Serve(ctx, ln); close(done) }()
	r.t.Cleanup(func() { cancel(); <-done })
	return &s
}

// TestClusterMessages: a message accepted by node 1 reaches devices held
// by nodes 2 and 3 in order; after a device moves to node 1, node 2 lets
// it go and the copies arrive once, from node 1.
func TestClusterMessages(t *testing.T) {
	rs := clusterRigs(t, 3)
	rs[0].account("alpha", "a1")
	rs[0].account("bravo", "b1", "b2")
	rs[0].friends("alpha", "bravo")
	a1 := rs[0].dev("alpha", "a1")
	b1 := rs[1].dev("bravo", "b1")
	b2 := rs[2].dev("bravo", "b2")
	for _, d := range []*dev{a1, b1, b2} {
		if res := d.register(600); res.StatusCode != 200 {
			t.Fatalf("register: %d", res.StatusCode)
		}
	}
	var want []string
	for i := range 10 {
		body := fmt.Sprintf("m%02d", i)
		if res := a1.send("bravo", body); res.StatusCode != 200 {
			t.Fatalf("send: %d %s", res.StatusCode, res.Reason)
		}
		want = append(want, body)
	}
	// No registration happens meanwhile: only the wake-ups deliver.
	waitUntil(t, "both devices get all ten", 10*time.Second, func() bool { return len(b1.received()) == 10 && len(b2.received()) == 10 })
	for _, d := range []*dev{b1, b2} {
		if got := strings.Join(d.bodies(), ","); got != strings.Join(want, ",") {
			t.Fatalf("%s got %s, want %s", d.name, got, want)
		}
	}

	// b1 moves to node 1 (a new connection there, as after a failover).
	moved := rs[0].dev("bravo", "b1")
	if res := moved.register(600); res.StatusCode != 200 {
		t.Fatalf("register on node 1: %d", res.StatusCode)
	}
	id := rs[0].deviceID("bravo", "b1")
	waitUntil(t, "node 2 lets b1 go", 5*time.Second, func() bool { return !rs[1].p.Registered(id) })
	if res := a1.send("bravo", "after the move"); res.StatusCode != 200 {
		t.Fatalf("send: %d", res.StatusCode)
	}
	has := func(body string) bool {
		for _, b := range moved.bodies() {
			if b == body {
				return true
			}
		}
		return false
	}
	waitUntil(t, "b1 gets it on node 1", 5*time.Second, func() bool { return has("after the move") })
	time.Sleep(300 * time.Millisecond)
	if n := len(b1.received()); n != 10 {
		t.Errorf("the old connection on node 2 got %d messages, want the first 10 only", n)
	}
	// A copy node 2 was still forgetting when b1 moved may come again
	// (the device drops it as a duplicate, as after a crash); nothing
	// else, and the new one once.
	after := 0
	for _, b := range moved.bodies() {
		switch {
		case b == "after the move":
			after++
		case !strings.HasPrefix(b, "m"):
			t.Errorf("b1 on node 1 got %q", b)
		}
	}
	if after != 1 {
		t.Errorf("b1 on node 1 got the new message %d times: %q", after, moved.bodies())
	}
	if got := moved.bodies(); got[len(got)-1] != "after the move" {
		t.Errorf("order on node 1: %q", got)
	}
}

// TestClusterPresence: a device registered on node 2 shows online in the
// agent of node 1, and offline again when it unregisters.
func TestClusterPresence(t *testing.T) {
	rs := clusterRigs(t, 2)
	rs[0].account("bravo", "b1")
	b1 := rs[1].dev("bravo", "b1")
	b1.register(600)
	shows := func(want string) func() bool {
		return func() bool {
			return strings.Contains(string(rs[0].p.pres.Fetch("bravo@"+domain, "bravo@"+domain)), want)
		}
	}
	waitUntil(t, "b1 online on node 1", 5*time.Second, shows(`<basic>open</basic>`))
	b1.register(0)
	waitUntil(t, "b1 offline on node 1", 5*time.Second, func() bool { return !shows(`<basic>open</basic>`)() })
}

// TestClusterCall: alice on node 1 calls bob, whose devices are held by
// nodes 2 (answers) and 3 (rings, then is cancelled); ACK, INFO and BYE
// cross the nodes both ways.
func TestClusterCall(t *testing.T) {
	rs := clusterRigs(t, 3)
	rs[0].account("alice", "a1")
	rs[0].account("bob", "b1", "b2")
	rs[0].friends("alice", "bob")
	a1, b1, b2 := rs[0].phone("alice", "a1"), rs[1].phone("bob", "b1"), rs[2].phone("bob", "b2")
	for _, ph := range []*phone{a1, b1, b2} {
		ph.register()
	}
	ids := []int64{rs[0].deviceID("bob", "b1"), rs[0].deviceID("bob", "b2")}
	waitUntil(t, "node 1 knows where bob's devices are", 5*time.Second, func() bool {
		s := &rs[0].p.cluster.hops
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.holders[ids[0]] == "n2" && s.holders[ids[1]] == "n3"
	})
	b1.setAnswer(ring(200*time.Millisecond, 200))
	b2.setAnswer(ring(0, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rang := false
	sess, err := a1.call(ctx, "alice", "bob", func() { rang = true })
	if err != nil {
		t.Fatalf("call across nodes: %v", err)
	}
	if !rang {
		t.Error("the caller saw no 180 Ringing")
	}
	wait(t, b2, "cancel")
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	wait(t, b1, "ack")
	if rs[0].p.ActiveCalls() != 1 || rs[1].p.ActiveCalls() != 1 || rs[2].p.ActiveCalls() != 0 {
		t.Errorf("active calls on the nodes: %d %d %d, want 1 1 0", rs[0].p.ActiveCalls(), rs[1].p.ActiveCalls(), rs[2].p.ActiveCalls())
	}
	info := sip.NewRequest(sip.INFO, sess.InviteResponse.Contact().Address)
	if res, err := sess.Do(ctx, info); err != nil || res.StatusCode != 200 {
		t.Fatalf("INFO across nodes: %v %v", res, err)
	}
	wait(t, b1, "info")
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("BYE across nodes: %v", err)
	}
	wait(t, b1, "bye")
	waitUntil(t, "both nodes end the dialog", 5*time.Second, func() bool {
		return rs[0].p.ActiveCalls() == 0 && rs[1].p.ActiveCalls() == 0
	})

	// The callee hangs up: its BYE goes back through node 2 and node 1.
	byeSeen := make(chan struct{})
	srvCaller, _ := sipgo.NewServer(a1.ua)
	srvCaller.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		sess.ReadBye(req, tx)
		close(byeSeen)
	})
	b1.setAnswer(ring(0, 200))
	b2.setAnswer(ring(0, 486))
	if sess, err = a1.call(ctx, "alice", "bob", nil); err != nil {
		t.Fatal(err)
	}
	sess.Ack(ctx)
	wait(t, b1, "ack")
	b1.mu.Lock()
	var dlg *sipgo.DialogServerSession
	for id, d := range b1.dialogs {
		if id == sess.InviteRequest.CallID().Value() {
			dlg = d
		}
	}
	b1.mu.Unlock()
	if err := dlg.Bye(ctx); err != nil {
		t.Fatalf("callee's BYE across nodes: %v", err)
	}
	select {
	case <-byeSeen:
	case <-ctx.Done():
		t.Fatal("the caller never got the callee's BYE")
	}
	waitUntil(t, "both nodes end the dialog", 5*time.Second, func() bool {
		return rs[0].p.ActiveCalls() == 0 && rs[1].p.ActiveCalls() == 0
	})
}

// BenchmarkClusterRelay: MESSAGEs from senders on node 1 to receivers on
// the last node (the same node when there is one), each stored, answered
// and delivered; both nodes run in this process on one store, so the
// difference is what routing over the bus costs, not what a second
// machine would add.
func BenchmarkClusterRelay(b *testing.B) {
	for _, nodes := range []int{1, 2} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			rs := clusterRigs(b, nodes, func(c *Config) { c.Rate, c.Burst = 1e6, 1e6 })
			const pairs = 8
			var senders, receivers []*dev
			for i := range pairs {
				s, r := fmt.Sprintf("s%d", i), fmt.Sprintf("r%d", i)
				rs[0].account(s, "d")
				rs[0].account(r, "d")
				rs[0].friends(s, r)
				sd, rd := rs[0].dev(s, "d"), rs[len(rs)-1].dev(r, "d")
				sd.register(600)
				rd.register(600)
				senders, receivers = append(senders, sd), append(receivers, rd)
			}
			per := max(b.N/pairs, 1)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i := range pairs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range per {
						if res := senders[i].send(fmt.Sprintf("r%d", i), fmt.Sprintf("%08d", j)); res.StatusCode != 200 {
							b.Errorf("send: %d", res.StatusCode)
							return
						}
					}
				}()
			}
			wg.Wait()
			waitUntil(b, "every message delivered", time.Minute, func() bool {
				for _, r := range receivers {
					if len(r.received()) < per {
						return false
					}
				}
				return true
			})
			b.StopTimer()
			b.ReportMetric(float64(per*pairs)/time.Since(start).Seconds(), "msg/s")
		})
	}
}

// TestClusterNodeGone: a node that falls silent (killed, cut off the bus)
// takes its devices' presence with it on the others.
func TestClusterNodeGone(t *testing.T) {
	oldBeat, oldGone := beatEvery, nodeGone
	beatEvery, nodeGone = 50*time.Millisecond, 300*time.Millisecond
	defer func() { beatEvery, nodeGone = oldBeat, oldGone }()
	rs := clusterRigs(t, 2)
	rs[0].account("bravo", "b1")
	rs[1].dev("bravo", "b1").register(600)
	online := func() bool {
		return strings.Contains(string(rs[0].p.pres.Fetch("bravo@"+domain, "bravo@"+domain)), `<basic>open</basic>`)
	}
	waitUntil(t, "b1 online on node 1", 5*time.Second, online)
	rs[1].p.cluster.bus.Close() // node 2 says nothing more
	waitUntil(t, "b1 offline on node 1 once node 2 is silent", 5*time.Second, func() bool { return !online() })
}

// TestClusterBusDown: with NATS gone, a message accepted by node 1 for a
// device on node 2 is still delivered: node 2 reads its devices' copies
// from the store while its bus is down.
func TestClusterBusDown(t *testing.T) {
	old := pollEvery
	pollEvery = 100 * time.Millisecond
	defer func() { pollEvery = old }()
	rs, ns := clusterRigsNATS(t, 2)
	rs[0].account("alpha", "a1")
	rs[0].account("bravo", "b1")
	rs[0].friends("alpha", "bravo")
	a1, b1 := rs[0].dev("alpha", "a1"), rs[1].dev("bravo", "b1")
	a1.register(600)
	b1.register(600)
	ns.Shutdown()
	waitUntil(t, "node 2 sees the bus down", 5*time.Second, func() bool { return rs[1].p.cluster.bus.Ready() != nil })
	if res := a1.send("bravo", "while the bus is down"); res.StatusCode != 200 {
		t.Fatalf("send: %d", res.StatusCode)
	}
	waitUntil(t, "delivery without the bus", 5*time.Second, func() bool { return len(b1.received()) == 1 })
	if rs[1].p.cluster.bus.Ready() == nil {
		t.Fatal("the bus came back: the delivery proves nothing")
	}
}
