package relay

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

const testRealm = "example.org"

// selfSigned makes a server certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: k}}, MinVersion: tls.VersionTLS12}, pool
}

type fixture struct {
	srv  *Server
	pool *x509.CertPool
}

func start(t *testing.T, mod func(*Config)) fixture {
	t.Helper()
	tc, pool := selfSigned(t)
	cfg := Config{Realm: testRealm, UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", TLSAddr: "127.0.0.1:0", TLS: tc,
		MinPort: 40000, MaxPort: 44999, Secret: testSecret, MaxAllocationsPerUser: 10, Threads: 2}
	if mod != nil {
		mod(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return fixture{s, pool}
}

// client opens a pion/turn client to the relay over transport.
func (f fixture) client(t *testing.T, transport, user, pass string) *turn.Client {
	t.Helper()
	var conn net.PacketConn
	var addr net.Addr
	switch transport {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = c, f.srv.UDPAddr()
	case "tcp":
		c, err := net.Dial("tcp", f.srv.TCPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = turn.NewSTUNConn(c), f.srv.TCPAddr()
	case "tls":
		c, err := tls.Dial("tcp", f.srv.TLSAddr().String(), &tls.Config{RootCAs: f.pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		conn, addr = turn.NewSTUNConn(c), f.srv.TLSAddr()
	}
	cl, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr.String(), TURNServerAddr: addr.String(),
		Conn: conn, Username: user, Password: pass, Realm: testRealm, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close(); conn.Close() })
	return cl
}

func creds(user string, ttl time.Duration) (string, string) {
	c := Issue(testSecret, user, ttl, time.Now())
	return c.Username, c.Password
}

// readWithin reads one datagram or fails after d.
func readWithin(t *testing.T, c net.PacketConn, d time.Duration) ([]byte, net.Addr) {
	t.Helper()
	buf := make([]byte, 1600)
	c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return buf[:n], from
}

// TestRelayCarriesBothWays allocates on the relay from two clients, one over
// each transport, and sends a datagram each way between the relayed
// addresses: the path an ICE relay-relay pair takes.
func TestRelayCarriesBothWays(t *testing.T) {
	f := start(t, nil)
	for _, tr := range []string{"udp", "tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			ua, pa := creds("alpha@example.org", time.Hour)
			ub, pb := creds("bravo@example.org", time.Hour)
			a, b := f.client(t, tr, ua, pa), f.client(t, "udp", ub, pb)
			ra, err := a.Allocate()
			if err != nil {
				t.Fatalf("allocate over %s: %v", tr, err)
			}
			defer ra.Close()
			rb, err := b.Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer rb.Close()
			if !strings.HasPrefix(ra.LocalAddr().String(), "127.0.0.1:4") {
				t.Fatalf("relayed address %s outside the configured range", ra.LocalAddr())
			}
			// Permissions for the peer's relayed address (RFC 8656 §9).
			if err := a.CreatePermission(rb.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			if err := b.CreatePermission(ra.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			msg := []byte("srtp ciphertext from alpha")
			if _, err := ra.WriteTo(msg, rb.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			got, from := readWithin(t, rb, 3*time.Second)
			if !bytes.Equal(got, msg) || from.String() != ra.LocalAddr().String() {
				t.Fatalf("bravo got %q from %s, want %q from %s", got, from, msg, ra.LocalAddr())
			}
			back := []byte("and back from bravo")
			if _, err := rb.WriteTo(back, ra.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			if got, _ := readWithin(t, ra, 3*time.Second); !bytes.Equal(got, back) {
				t.Fatalf("alpha got %q", got)
			}
		})
	}
}

func TestSTUNBinding(t *testing.T) {
	f := start(t, nil)
	c := f.client(t, "udp", "", "")
	mapped, err := c.SendBindingRequest()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mapped.String(), "127.0.0.1:") {
		t.Fatalf("mapped address %s", mapped)
	}
}

func TestCredentialsRefused(t *testing.T) {
	f := start(t, nil)
	good, goodPass := creds("alpha@example.org", time.Hour)
	expired, expiredPass := creds("alpha@example.org", -time.Second)
	other := Issue([]byte("another secret, 32 characters.."), "alpha@example.org", time.Hour, time.Now())
	for _, tc := range []struct{ name, user, pass string }{
		{"expired", expired, expiredPass},
		{"wrong password", good, goodPass[:10] + "AAAA" + goodPass[14:]},
		{"other secret", other.Username, other.Password},
		{"not REST", "alpha", "whatever"},
		{"expiry extended", "9999999999:alpha@example.org", goodPass},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.client(t, "udp", tc.user, tc.pass)
			if conn, err := c.Allocate(); err == nil {
				conn.Close()
				t.Fatal("allocation accepted")
			}
		})
	}
	if got := f.srv.Stats().Allocations; got != 0 {
		t.Fatalf("%d allocations after refusals", got)
	}
}

func TestAllocationCap(t *testing.T) {
	f := start(t, func(c *Config) { c.MaxAllocationsPerUser = 2 })
	u, p := creds("alpha@example.org", time.Hour)
	var conns []net.PacketConn
	for i := 0; i < 2; i++ {
		c, err := f.client(t, "udp", u, p).Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
		conns = append(conns, c)
	}
	if c, err := f.client(t, "udp", u, p).Allocate(); err == nil {
		c.Close()
		t.Fatal("third allocation of one user accepted")
	} else if !strings.Contains(err.Error(), "486") {
		t.Fatalf("third allocation: %v, want 486 Allocation Quota Reached", err)
	}
	// Another user is not affected; a freed slot can be used again.
	u2, p2 := creds("bravo@example.org", time.Hour)
	c, err := f.client(t, "udp", u2, p2).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	conns[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for f.srv.Stats().Allocations > 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	c, err = f.client(t, "udp", u, p).Allocate()
	if err != nil {
		t.Fatalf("allocation after one was freed: %v", err)
	}
	c.Close()
	conns[1].Close()
}

// TestBandwidthQuota sends well past the bucket at once: what crosses is
// about one second of the rate (the burst), the rest is dropped and counted.
func TestBandwidthQuota(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"per allocation", func(c *Config) { c.AllocationRate = 10000 }},
		{"per user", func(c *Config) { c.UserRate = 10000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, tc.mod)
			u, p := creds("alpha@example.org", time.Hour)
			rc, err := f.client(t, "udp", u, p).Allocate()
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			pkt := make([]byte, 1000)
			const sent = 100
			for i := 0; i < sent; i++ {
				if _, err := rc.WriteTo(pkt, peer.LocalAddr()); err != nil {
					t.Fatal(err)
				}
			}
			got := 0
			buf := make([]byte, 1600)
			for {
				peer.SetReadDeadline(time.Now().Add(2 * time.Second)) // quiet for 2 s: all that crosses has
				if _, _, err := peer.ReadFrom(buf); err != nil {
					break
				}
				got++
			}
			// 10 kB/s with a 10 kB burst: 10 datagrams at once, and a few
			// more for the tokens refilled while sending.
			if got < 5 || got > 20 {
				t.Fatalf("%d of %d 1000-byte datagrams crossed a 10 kB/s quota", got, sent)
			}
			if d := f.srv.Stats().DroppedBytes; d < uint64(sent-20)*1000 {
				t.Fatalf("dropped %d bytes", d)
			}
		})
	}
}

func TestStartRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"short secret", func(c *Config) { c.Secret = []byte("short") }},
		{"no listener", func(c *Config) { c.UDPAddr, c.TCPAddr, c.TLSAddr = "", "", "" }},
		{"ports", func(c *Config) { c.MinPort, c.MaxPort = 5000, 4000 }},
		{"wildcard without external", func(c *Config) { c.UDPAddr, c.TCPAddr, c.TLSAddr = "0.0.0.0:0", "", "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Realm: testRealm, UDPAddr: "127.0.0.1:0", MinPort: 40000, MaxPort: 41000, Secret: testSecret}
			tc.mod(&cfg)
			if s, err := Start(cfg); err == nil {
				s.Close()
				t.Fatal("started")
			}
		})
	}
}

func TestPermissions(t *testing.T) {
	pub := permissions(net.ParseIP("192.0.2.1"))
	loop := permissions(net.ParseIP("127.0.0.1"))
	for _, tc := range []struct {
		peer      string
		pub, loop bool
	}{
		{"198.51.100.7", true, true},
		{"127.0.0.1", false, true},
		{"::1", false, true},
		{"0.0.0.0", false, false},
		{"224.0.0.1", false, false},
		{"255.255.255.255", false, false},
	} {
		ip := net.ParseIP(tc.peer)
		if pub(nil, ip) != tc.pub || loop(nil, ip) != tc.loop {
			t.Errorf("%s: public relay %v, loopback relay %v", tc.peer, pub(nil, ip), loop(nil, ip))
		}
	}
}

func TestParseUsername(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		in   string
		user string
		err  error
	}{
		{"1700000060:alpha@example.org", "alpha@example.org", nil},
		{"1700000060:a:b", "a:b", nil},
		{"1700000000:alpha@example.org", "", ErrExpired},
		{"1600000000:alpha@example.org", "", ErrExpired},
		{"alpha@example.org", "", ErrMalformedUsername},
		{":alpha", "", ErrMalformedUsername},
		{"1700000060:", "", ErrMalformedUsername},
		{"-1:alpha", "", ErrMalformedUsername},
		{"+1700000060:alpha", "", ErrMalformedUsername},
		{"17000000600000000:alpha", "", ErrMalformedUsername},
		{"1700000060:al\x00pha", "", ErrMalformedUsername},
		{"1700000060:\xff", "", ErrMalformedUsername},
		{"1700000060:" + strings.Repeat("a", 600), "", ErrMalformedUsername},
	} {
		user, err := Check(tc.in, now)
		if !errors.Is(err, tc.err) || user != tc.user {
			t.Errorf("Check(%q) = %q, %v; want %q, %v", tc.in, user, err, tc.user, tc.err)
		}
	}
}

// TestPasswordVector checks the TURN REST password against a value computed
// apart: printf %s '1700000060:alpha@example.org' | openssl dgst -sha1 -hmac
// 0123456789abcdef0123456789abcdef -binary | base64
func TestPasswordVector(t *testing.T) {
	c := Issue(testSecret, "alpha@example.org", 60*time.Second, time.Unix(1700000000, 0))
	if c.Username != "1700000060:alpha@example.org" {
		t.Fatalf("username %q", c.Username)
	}
	if want := passwordVector; c.Password != want {
		t.Fatalf("password %q, want %q", c.Password, want)
	}
}

func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"1700000060:alpha@example.org", "1:a", ":", "", "99999999999999999999:x", "1700000060:a\x00", "12:\xff\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exp, user, err := ParseUsername(s)
		if err != nil {
			if !errors.Is(err, ErrMalformedUsername) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// What parses re-encodes to the same username (bar leading zeros).
		ts, rest, _ := strings.Cut(s, ":")
		if ts = strings.TrimLeft(ts, "0"); ts == "" {
			ts = "0"
		}
		if ts != strconv.FormatInt(exp.Unix(), 10) || rest != user {
			t.Fatalf("%q parsed to %d and %q", s, exp.Unix(), user)
		}
	})
}

const passwordVector = "YSsOBjp0nQvEXoiMlmHzeGnsJIg="

// TestStreamBounds: connections beyond the per-source cap are closed at
// accept, idle ones after the idle time, and a closed one frees its slot.
func TestStreamBounds(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := bound(raw)
	l.perSource, l.idle = 2, 300*time.Millisecond
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	// The third is closed by the listener: its read ends at once.
	clients[2].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := clients[2].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("third connection from one source: %v, want closed", err)
	}
	a := <-accepted
	<-accepted
	start := time.Now()
	// Bounds are for a loaded machine: the idle time is 300 ms.
	if _, err := a.Read(make([]byte, 1)); !isTimeout(err) || time.Since(start) > 10*time.Second {
		t.Fatalf("idle read: %v after %v", err, time.Since(start))
	}
	a.Close()
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("a freed slot was not reused")
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestPseudonym(t *testing.T) {
	a, b := Pseudonym(testSecret, "alpha@example.org"), Pseudonym(testSecret, "bravo@example.org")
	if len(a) != 16 || a == b || a != Pseudonym(testSecret, "alpha@example.org") || a == Pseudonym([]byte("another secret of 32 characters."), "alpha@example.org") {
		t.Fatalf("pseudonyms %q %q", a, b)
	}
	if _, err := Check(Issue(testSecret, a, time.Minute, time.Now()).Username, time.Now()); err != nil {
		t.Fatal(err)
	}
}
