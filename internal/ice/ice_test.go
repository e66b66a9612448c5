package ice_test

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/ice"
	"github.com/phonex/phonex/internal/ice/iceturn"
	"github.com/pion/turn/v5"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// connectPair runs two agents on loopback to a selected pair and checks
// that datagrams cross both ways.
func connectPair(t *testing.T, offerer, answerer ice.Config) (*ice.Conn, *ice.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := ice.New(offerer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := ice.New(answerer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	pa, defA, err := a.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pb, defB, err := b.Gather(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !defA.IsValid() || !defB.IsValid() {
		t.Fatalf("default candidates %v %v", defA, defB)
	}
	type res struct {
		c   *ice.Conn
		err error
	}
	// As a call does, the answerer knows the offer's candidates before
	// the offerer's checks can reach it; else a check that comes first
	// makes a peer-reflexive candidate and the path is misnamed.
	if err := b.SetRemote(pa); err != nil {
		t.Fatal(err)
	}
	ch := make(chan res, 1)
	go func() {
		c, err := b.Connect(ctx, pa, false)
		ch <- res{c, err}
	}()
	ca, err := a.Connect(ctx, pb, true)
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, dir := range []struct{ from, to *ice.Conn }{{ca, r.c}, {r.c, ca}} {
		msg := []byte("\x80\x60 not STUN, an RTP-like datagram")
		got := make(chan []byte, 1)
		go func() {
			buf := make([]byte, 1500)
			n, err := dir.to.Read(buf)
			if err == nil {
				got <- bytes.Clone(buf[:n])
			}
		}()
		deadline := time.After(5 * time.Second)
	loop:
		for {
			if _, err := dir.from.Write(msg); err != nil {
				t.Fatal(err)
			}
			select {
			case b := <-got:
				if !bytes.Equal(b, msg) {
					t.Fatalf("got %q", b)
				}
				break loop
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatal("datagram did not cross")
			}
		}
	}
	return ca, r.c
}

func TestHostPath(t *testing.T) {
	ca, cb := connectPair(t, ice.Config{IP: loopback}, ice.Config{IP: loopback})
	if ca.Path() != ice.PathHost || cb.Path() != ice.PathHost {
		t.Fatalf("paths %q %q, want host", ca.Path(), cb.Path())
	}
}

func TestRelayPath(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "test-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	servers, err := srv.Servers("alpha")
	if err != nil {
		t.Fatal(err)
	}
	ca, cb := connectPair(t, ice.Config{IP: loopback, Servers: servers, RelayOnly: true}, ice.Config{IP: loopback})
	if ca.Path() != ice.PathRelay || cb.Path() != ice.PathRelay {
		t.Fatalf("paths %q %q, want relay", ca.Path(), cb.Path())
	}
	if srv.Allocations() == 0 {
		t.Fatal("the TURN server made no allocation")
	}
}

// TURN over TCP (RFC 8656 §3.1), for networks that pass no UDP: the
// allocation is made over a TCP connection, the relayed address is UDP.
func TestRelayOverTCP(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "test-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	servers, err := srv.Servers("alpha")
	if err != nil {
		t.Fatal(err)
	}
	servers.URLs = []string{strings.Replace(servers.URLs[0], "transport=udp", "transport=tcp", 1)}
	ca, cb := connectPair(t, ice.Config{IP: loopback, Servers: servers, RelayOnly: true}, ice.Config{IP: loopback})
	if ca.Path() != ice.PathRelay || cb.Path() != ice.PathRelay {
		t.Fatalf("paths %q %q, want relay", ca.Path(), cb.Path())
	}
}

func TestRelayOnlyGathersOnlyRelays(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "s")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	servers, _ := srv.Servers("alpha")
	a, err := ice.New(ice.Config{IP: loopback, Servers: servers, RelayOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p, def, err := a.Gather(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range p.Candidates {
		if !strings.Contains(c, "typ relay") {
			t.Fatalf("relay-only agent offered %q", c)
		}
	}
	if def.Addr() != loopback || def.Port() == srv.Addr().Port() {
		t.Fatalf("default candidate %v is not a relayed address", def)
	}
}

func TestRelayUnavailable(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "test-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	good, err := srv.Servers("alpha")
	if err != nil {
		t.Fatal(err)
	}
	wrongPassword, expired := good, good
	wrongPassword.Password = "bm90IHRoZSBITUFD"
	// Made with the right secret, but expired an hour ago.
	if expired.Username, expired.Password, err = turn.GenerateLongTermTURNRESTCredentials("test-secret", "alpha", -time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		servers ice.Servers
	}{
		{"no TURN server", ice.Servers{}},
		{"nothing listening", ice.Servers{URLs: []string{"turn:127.0.0.1:1?transport=udp"}, Username: good.Username, Password: good.Password}},
		{"wrong password", wrongPassword},
		{"expired username", expired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ice.New(ice.Config{IP: loopback, Servers: tt.servers, RelayOnly: true, GatherTimeout: 2 * time.Second})
			if err == nil {
				defer a.Close()
				_, _, err = a.Gather(context.Background())
			}
			if !errors.Is(err, ice.ErrNoRelay) {
				t.Fatalf("err = %v, want ErrNoRelay", err)
			}
		})
	}
}

func TestBadServerURL(t *testing.T) {
	if _, err := ice.New(ice.Config{Servers: ice.Servers{URLs: []string{"http://x"}}}); !errors.Is(err, ice.ErrBadServer) {
		t.Fatalf("err = %v", err)
	}
}

func TestConnectRejectsEmptyParams(t *testing.T) {
	a, err := ice.New(ice.Config{IP: loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, _, err := a.Gather(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []ice.Params{{}, {Ufrag: "abcd", Pwd: "0123456789012345678901", Candidates: []string{"garbage"}}} {
		if _, err := a.Connect(context.Background(), p, true); !errors.Is(err, ice.ErrBadParams) {
			t.Fatalf("%+v: err = %v", p, err)
		}
	}
}
