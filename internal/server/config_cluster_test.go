package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/bus"
)

func TestConfigCluster(t *testing.T) {
	c := Defaults("/d")
	if back, err := ParseConfig("/d", c.Encode()); err != nil || back.Cluster != (ClusterConfig{}) {
		t.Fatalf("default: %+v %v (a node runs alone unless told)", back.Cluster, err)
	}
	c.Cluster = ClusterConfig{Bus: "nats://10.0.0.5:4222, tls://user:pw@10.0.0.6:4222", NodeID: "node-1"}
	back, err := ParseConfig("/d", c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.Cluster != c.Cluster {
		t.Fatalf("round trip: %+v, want %+v", back.Cluster, c.Cluster)
	}
	for _, in := range []string{"bus = http://x:1", "bus = nats://", "bus = 10.0.0.5:4222", "node_id = a b", "node_id = " + strings.Repeat("n", 65)} {
		if _, err := ParseConfig("/d", []byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestNodeIDGenerated(t *testing.T) {
	a, b := ClusterConfig{}.nodeID(), ClusterConfig{}.nodeID()
	if a == b {
		t.Errorf("two starts share the id %q", a)
	}
	if err := bus.CheckNodeID(a); err != nil {
		t.Errorf("generated id: %v", err)
	}
	if got := (ClusterConfig{NodeID: "n7"}).nodeID(); got != "n7" {
		t.Errorf("configured id: %q", got)
	}
}

func TestBusReadyAlone(t *testing.T) {
	n := &Node{}
	if err := n.BusReady(); !errors.Is(err, ErrAlone) {
		t.Errorf("a node without a bus: %v", err)
	}
}
