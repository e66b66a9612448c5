package proxy

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exhausted fails its first accepts as a process out of file descriptors
// does, then accepts for real.
type exhausted struct {
	net.Listener
	fails int
}

func (l *exhausted) Accept() (net.Conn, error) {
	if l.fails > 0 {
		l.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

func TestGuardSurvivesAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	g := newGuardListener(&exhausted{Listener: ln, fails: 5}, 10, 10, slog.New(slog.NewTextHandler(&logs, nil)))
	defer g.Close()
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	c, err := g.Accept()
	if err != nil {
		t.Fatalf("accept gave up: %v", err)
	}
	c.Close()
	if n := strings.Count(logs.String(), "sip accept failed"); n != 1 {
		t.Fatalf("%d log lines for one burst of accept errors:\n%s", n, logs.String())
	}
	g.Close()
	if _, err := g.Accept(); err == nil {
		t.Fatal("accept on a closed listener succeeded")
	}
}

func TestGuardCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := newGuardListener(ln, 3, 2, slog.New(slog.DiscardHandler))
	defer g.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := g.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// closed reports whether the node closed c within d: a refusal is
	// waited for generously, a connection kept is checked briefly once the
	// node has accepted it.
	closed := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := c.Read(make([]byte, 1))
		return err == io.EOF
	}
	var held []net.Conn
	accept := func(what string) {
		select {
		case c := <-accepted:
			held = append(held, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not accepted", what)
		}
	}
	a1, a2, a3 := dial("127.0.0.1"), dial("127.0.0.1"), dial("127.0.0.1")
	accept("first of 127.0.0.1")
	accept("second of 127.0.0.1")
	if !closed(a3, 10*time.Second) || closed(a1, 50*time.Millisecond) || closed(a2, 50*time.Millisecond) {
		t.Fatal("per-source cap of 2 not applied")
	}
	b1, b2 := dial("127.0.0.2"), dial("127.0.0.2")
	accept("first of 127.0.0.2")
	if !closed(b2, 10*time.Second) || closed(b1, 50*time.Millisecond) {
		t.Fatal("total cap of 3 not applied")
	}
	if g.open() != 3 {
		t.Fatalf("%d held, want 3", g.open())
	}
	held[0].Close() // the node closes one of 127.0.0.1's
	c := dial("127.0.0.1")
	accept("a connection in the slot given back")
	if closed(c, 50*time.Millisecond) {
		t.Fatal("a closed connection was not given back")
	}
}

func TestSourceOf(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:5061", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:5061", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:40000", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.7]:5061", "192.0.2.7"},
		{"not an address", "not an address"},
	} {
		if got := sourceOf(tc.addr); got != tc.want {
			t.Errorf("sourceOf(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}
