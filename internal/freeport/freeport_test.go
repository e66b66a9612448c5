package freeport

import (
	"net"
	"strconv"
	"testing"
)

func TestPickIsFreeAndBelowEphemeral(t *testing.T) {
	seen := map[int]bool{}
	for range 50 {
		p := Port(t)
		if p < floor || p >= ephemeralLow() {
			t.Fatalf("port %d outside [%d, %d)", p, floor, ephemeralLow())
		}
		seen[p] = true
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("picked port %d is not free for TCP: %v", p, err)
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			t.Fatalf("picked port %d is not free for UDP: %v", p, err)
		}
		u.Close()
	}
	if len(seen) < 40 {
		t.Fatalf("50 picks gave only %d ports", len(seen))
	}
}

// TestPickSkipsBusyPort: a port taken for TCP alone or UDP alone is not
// picked.
func TestPickSkipsBusyPort(t *testing.T) {
	p := Port(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if free(p) {
		t.Fatal("a port with a TCP listener counted as free")
	}
	q := Port(t)
	u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if free(q) {
		t.Fatal("a port with a UDP socket counted as free")
	}
}
