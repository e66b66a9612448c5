package bus

import (
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/phonex/phonex/internal/freeport"
)

// startNATS runs a NATS server in the test process on port (0: a free one).
func startNATS(t *testing.T, port int) *natsserver.Server {
	t.Helper()
	if port == 0 {
		port = freeport.Port(t)
	}
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

type inbox struct {
	mu sync.Mutex
	ev []Event
}

func (in *inbox) add(e Event) { in.mu.Lock(); in.ev = append(in.ev, e); in.mu.Unlock() }
func (in *inbox) len() int    { in.mu.Lock(); defer in.mu.Unlock(); return len(in.ev) }

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBusRoutesBetweenNodes(t *testing.T) {
	s := startNATS(t, 0)
	url := s.ClientURL()
	a, err := Connect(Config{URL: url, Node: "a", Cluster: "example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Connect(Config{URL: url, Node: "b", Cluster: "example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var atA, atB inbox
	if err := a.Subscribe(atA.add, KindWake, KindPresence); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(atB.add, KindWake, KindPresence); err != nil {
		t.Fatal(err)
	}
	a.Flush(time.Second)
	b.Flush(time.Second)
	for i := 1; i <= 100; i++ {
		if err := a.Publish(Event{Kind: KindWake, Devices: []int64{int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "100 wakes at b", func() bool { return atB.len() == 100 })
	for i, e := range atB.ev {
		if e.Node != "a" || e.Devices[0] != int64(i+1) {
			t.Fatalf("event %d: %+v (want from a, device %d, in order)", i, e, i+1)
		}
	}
	a.Flush(time.Second)
	time.Sleep(100 * time.Millisecond)
	if atA.len() != 0 {
		t.Fatalf("a received its own events: %d", atA.len())
	}
}

// TestBusReconnects restarts NATS under two nodes: both report not ready
// while it is down and recover by themselves.
func TestBusReconnects(t *testing.T) {
	s := startNATS(t, 0)
	port := s.Addr().(*net.TCPAddr).Port
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	var downs sync.WaitGroup
	downs.Add(1)
	var once sync.Once
	a, err := Connect(Config{URL: url, Node: "a", Cluster: "c",
		Disconnected: func() { once.Do(downs.Done) },
		Connected:    func() {}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Connect(Config{URL: url, Node: "b", Cluster: "c", Connected: func() {}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var atB inbox
	b.Subscribe(atB.add, KindWake)
	waitFor(t, "ready", func() bool { return a.Ready() == nil && b.Ready() == nil })
	s.Shutdown()
	downs.Wait()
	waitFor(t, "not ready", func() bool { return errors.Is(a.Ready(), ErrNotConnected) })
	startNATS(t, port)
	waitFor(t, "ready again", func() bool { return a.Ready() == nil && b.Ready() == nil })
	b.Flush(time.Second)
	a.Publish(Event{Kind: KindWake, Devices: []int64{7}})
	waitFor(t, "a wake after the restart", func() bool { return atB.len() == 1 })
}

func TestBusWaitsForNATS(t *testing.T) {
	port := freeport.Port(t)
	connected := make(chan struct{}, 1)
	a, err := Connect(Config{URL: "nats://127.0.0.1:" + strconv.Itoa(port), Node: "a", Cluster: "c",
		Connected: func() { connected <- struct{}{} }})
	if err != nil {
		t.Fatalf("connect without NATS up: %v", err)
	}
	defer a.Close()
	if !errors.Is(a.Ready(), ErrNotConnected) {
		t.Fatal("ready without NATS")
	}
	startNATS(t, port)
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("did not connect once NATS came up")
	}
	if err := a.Ready(); err != nil {
		t.Fatal(err)
	}
}

func TestConnectChecksConfig(t *testing.T) {
	for _, c := range []Config{
		{URL: "nats://127.0.0.1:1", Node: "", Cluster: "c"},
		{URL: "nats://127.0.0.1:1", Node: "a b", Cluster: "c"},
		{URL: "nats://127.0.0.1:1", Node: "a", Cluster: "*"},
	} {
		if _, err := Connect(c); err == nil {
			t.Errorf("%+v: accepted", c)
		}
	}
}
