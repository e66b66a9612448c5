package tlsrecord

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func testCert(t testing.TB, name string) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: leaf}
}

// serverConf is the SIP listener's TLS as far as the record layer is
// concerned: TLS 1.2 and 1.3, a client certificate requested, no tickets.
func serverConf(t testing.TB) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{testCert(t, "server")}, ClientAuth: tls.RequestClientCert,
		MinVersion: tls.VersionTLS12, SessionTicketsDisabled: true}
}

// accepted is one server connection after its handshake: taken over, or
// kept by crypto/tls with the reason.
type accepted struct {
	conn  net.Conn
	state tls.ConnectionState
	taken bool
	kept  error
	err   error
}

// listen accepts connections on loopback and hands each over after its
// handshake.
func listen(t testing.TB, conf *tls.Config) (string, <-chan accepted) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conf = ServerConfig(conf)
	ch := make(chan accepted, 4)
	go func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				s := NewServer(raw, conf)
				if err := s.TLS().Handshake(); err != nil {
					ch <- accepted{err: err}
					raw.Close()
					return
				}
				a := accepted{state: s.TLS().ConnectionState()}
				c, err := s.TakeOver()
				switch {
				case err == nil:
					a.conn, a.taken = c, true
				case errors.Is(err, ErrKept):
					a.conn, a.kept = s.TLS(), err
				default:
					a.err = err
				}
				ch <- a
			}()
		}
	}()
	return ln.Addr().String(), ch
}

func dial(t testing.TB, addr string, conf *tls.Config) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func clientConf(t testing.TB) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{testCert(t, "device")}, MinVersion: tls.VersionTLS13}
}

func next(t testing.TB, ch <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.conn != nil {
			t.Cleanup(func() { a.conn.Close() })
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
	}
	return accepted{}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

// TestGoClient runs a crypto/tls client against a taken-over server
// connection: mutual TLS, data both ways at once after the handshake,
// messages over many records, many small records, close_notify both ways.
func TestGoClient(t *testing.T) {
	addr, ch := listen(t, serverConf(t))
	c := dial(t, addr, clientConf(t))
	// Written at once after the handshake: crypto/tls on the server must
	// not have swallowed it with the client's Finished.
	first := []byte("REGISTER sips:example.org SIP/2.0\r\n\r\n")
	if _, err := c.Write(first); err != nil {
		t.Fatal(err)
	}
	a := next(t, ch)
	if !a.taken {
		t.Fatalf("not taken over: %v", a.kept)
	}
	if len(a.state.PeerCertificates) != 1 || a.state.PeerCertificates[0].Subject.CommonName != "device" {
		t.Fatalf("client certificate not seen: %v", a.state.PeerCertificates)
	}
	s := a.conn
	got := make([]byte, len(first))
	if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, first) {
		t.Fatalf("read %q, %v", got, err)
	}

	t.Run("large both ways", func(t *testing.T) {
		up, down := pattern(300_000, 1), pattern(200_000, 2)
		errc := make(chan error, 2)
		go func() { _, err := c.Write(up); errc <- err }()
		go func() { _, err := s.Write(down); errc <- err }()
		gotUp, gotDown := make([]byte, len(up)), make([]byte, len(down))
		if _, err := io.ReadFull(s, gotUp); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, gotDown); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(gotUp, up) || !bytes.Equal(gotDown, down) {
			t.Fatal("data changed in transit")
		}
	})
	t.Run("many records", func(t *testing.T) {
		const n = 3000
		go func() {
			for i := range n {
				fmt.Fprintf(c, "%05d", i)
			}
		}()
		buf := make([]byte, 5*n)
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if want := fmt.Sprintf("%05d", i); string(buf[5*i:5*i+5]) != want {
				t.Fatalf("record %d: %q", i, buf[5*i:5*i+5])
			}
		}
		go func() {
			for i := range n {
				fmt.Fprintf(s, "%05d", i)
			}
		}()
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if want := fmt.Sprintf("%05d", i); string(buf[5*i:5*i+5]) != want {
				t.Fatalf("record %d: %q", i, buf[5*i:5*i+5])
			}
		}
	})
	t.Run("close_notify", func(t *testing.T) {
		if err := c.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
			t.Fatalf("server read after client close_notify: %d, %v", n, err)
		}
		// Reading has ended, writing has not.
		if _, err := s.Write([]byte("bye")); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		rest, err := io.ReadAll(c)
		if err != nil || string(rest) != "bye" {
			t.Fatalf("client read %q, %v; want bye then EOF", rest, err)
		}
	})
}

// TestDeadlines: a read deadline interrupts a wait and a record half
// received, which is kept and completed by the next Read.
func TestDeadlines(t *testing.T) {
	addr, ch := listen(t, serverConf(t))
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	// The client's bytes go through a pipe the test can cut records in.
	split := &splitConn{Conn: raw}
	c := tls.Client(split, clientConf(t))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := next(t, ch).conn

	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if _, err := s.Read(make([]byte, 10)); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("idle read: %v, want a timeout", err)
	}
	for _, cut := range []int{2, 5, 20} { // inside the header, at its end, inside the body
		split.hold.Store(int64(cut))
		if _, err := c.Write([]byte("INVITE over two TCP segments")); err != nil {
			t.Fatal(err)
		}
		s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := s.Read(make([]byte, 100)); !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("cut at %d: read %v, want a timeout", cut, err)
		}
		if err := split.release(); err != nil {
			t.Fatal(err)
		}
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := make([]byte, 100)
		n, err := s.Read(got)
		if err != nil || string(got[:n]) != "INVITE over two TCP segments" {
			t.Fatalf("cut at %d: read %q, %v", cut, got[:n], err)
		}
	}
	// A write deadline in the past fails the write and ends writing.
	s.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := s.Write([]byte("x")); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("write past its deadline: %v", err)
	}
	s.SetWriteDeadline(time.Time{})
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("write after a failed write succeeded")
	}
}

// splitConn holds back the end of the next write from its hold'th byte
// until release.
type splitConn struct {
	net.Conn
	hold atomic.Int64
	rest []byte
}

func (c *splitConn) Write(b []byte) (int, error) {
	if h := int(c.hold.Swap(0)); h > 0 && h < len(b) {
		c.rest = append([]byte(nil), b[h:]...)
		if _, err := c.Conn.Write(b[:h]); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	return c.Conn.Write(b)
}

func (c *splitConn) release() error {
	_, err := c.Conn.Write(c.rest)
	c.rest = nil
	return err
}

// flipConn flips a bit of the ciphertext of writes once armed.
type flipConn struct {
	net.Conn
	armed atomic.Bool
}

func (c *flipConn) Write(b []byte) (int, error) {
	if c.armed.Load() && len(b) > 10 {
		b = append([]byte(nil), b...)
		b[10] ^= 1
	}
	return c.Conn.Write(b)
}

// TestCorruptRecord: a record that does not authenticate is an error
// (bad_record_mac, sent to the peer), never a panic, and it sticks.
func TestCorruptRecord(t *testing.T) {
	addr, ch := listen(t, serverConf(t))
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	fc := &flipConn{Conn: raw}
	c := tls.Client(fc, clientConf(t))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := next(t, ch).conn
	fc.armed.Store(true)
	if _, err := c.Write([]byte("MESSAGE")); err != nil {
		t.Fatal(err)
	}
	var ae *AlertError
	if _, err := s.Read(make([]byte, 10)); !errors.As(err, &ae) || ae.Alert != AlertBadRecordMAC || ae.Remote {
		t.Fatalf("read of a corrupted record: %v", err)
	}
	if _, err := s.Read(make([]byte, 10)); !errors.As(err, &ae) {
		t.Fatalf("second read: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 10)); err == nil || !bytes.Contains([]byte(err.Error()), []byte("bad record MAC")) {
		t.Fatalf("client: %v, want the bad_record_mac alert", err)
	}
}

// TestTLS12Kept: a TLS 1.2 client (some standard phones) stays on
// crypto/tls and works as before.
func TestTLS12Kept(t *testing.T) {
	addr, ch := listen(t, serverConf(t))
	conf := clientConf(t)
	conf.MinVersion, conf.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	c := dial(t, addr, conf)
	if _, err := c.Write([]byte("OPTIONS")); err != nil {
		t.Fatal(err)
	}
	a := next(t, ch)
	if a.taken || !errors.Is(a.kept, ErrKept) {
		t.Fatalf("TLS 1.2 taken over: %v", a.kept)
	}
	got := make([]byte, 7)
	if _, err := io.ReadFull(a.conn, got); err != nil || string(got) != "OPTIONS" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := a.conn.Write([]byte("200")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got[:3]); err != nil || string(got[:3]) != "200" {
		t.Fatalf("client read %q, %v", got[:3], err)
	}
}

// TestTicketsKept: a server that may send session tickets writes under
// its application key during the handshake, so it is not taken over.
func TestTicketsKept(t *testing.T) {
	conf := serverConf(t)
	conf.SessionTicketsDisabled = false
	addr, ch := listen(t, conf)
	c := dial(t, addr, clientConf(t))
	c.Write([]byte("x"))
	if a := next(t, ch); a.taken || !errors.Is(a.kept, ErrKept) {
		t.Fatalf("taken over with tickets on: %v", a.kept)
	}
}

// TestKeyUpdates lowers the key usage limit so that both sides' keys
// change many times in one exchange: the server updates its key itself
// before the limit (§5.5) and asks the client for a new one (§4.6.3),
// and crypto/tls on the client follows.
func TestKeyUpdates(t *testing.T) {
	defer func(n uint64) { keyUpdateAfter = n }(keyUpdateAfter)
	keyUpdateAfter = 4
	addr, ch := listen(t, serverConf(t))
	c := dial(t, addr, clientConf(t))
	c.Write([]byte("0"))
	s := next(t, ch).conn.(*Conn)
	io.ReadFull(s, make([]byte, 1))
	first := s.out.secret
	for round := range 5 {
		go func() {
			for i := range 20 {
				fmt.Fprintf(c, "c%d.%02d", round, i)
			}
		}()
		buf := make([]byte, 20*5)
		if _, err := io.ReadFull(s, buf); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i := range 20 {
			if want := fmt.Sprintf("c%d.%02d", round, i); string(buf[5*i:5*i+5]) != want {
				t.Fatalf("round %d record %d: %q", round, i, buf[5*i:5*i+5])
			}
		}
		go func() {
			for i := range 20 {
				fmt.Fprintf(s, "s%d.%02d", round, i)
			}
		}()
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("round %d: client: %v", round, err)
		}
		for i := range 20 {
			if want := fmt.Sprintf("s%d.%02d", round, i); string(buf[5*i:5*i+5]) != want {
				t.Fatalf("round %d record %d: %q", round, i, buf[5*i:5*i+5])
			}
		}
	}
	s.wmu.Lock()
	changed := s.out.secret != first
	s.wmu.Unlock()
	if !changed {
		t.Fatal("write key never updated")
	}
	s.rmu.Lock()
	seq := s.in.seq
	s.rmu.Unlock()
	if seq > 2*keyUpdateAfter+20 {
		t.Fatalf("read sequence at %d: the client never updated its key", seq)
	}
}

// TestConcurrent writes from several goroutines while reading, as sipgo
// does (responses, delivery runners); run with -race.
func TestConcurrent(t *testing.T) {
	addr, ch := listen(t, serverConf(t))
	c := dial(t, addr, clientConf(t))
	c.Write([]byte("go"))
	s := next(t, ch).conn
	io.ReadFull(s, make([]byte, 2))
	const writers, each = 4, 200
	msg := pattern(700, 3)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				if _, err := s.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() {
		for range writers * each {
			c.Write(msg[:100])
		}
	}()
	readErr := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(s, make([]byte, writers*each*100))
		readErr <- err
	}()
	got := make([]byte, writers*each*len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(got); i += len(msg) {
		if !bytes.Equal(got[i:i+len(msg)], msg) {
			t.Fatalf("message at %d interleaved", i)
		}
	}
	wg.Wait()
	if err := <-readErr; err != nil {
		t.Fatal(err)
	}
	// Close while a read waits: the read ends, nothing races.
	done := make(chan error, 1)
	go func() { _, err := s.Read(make([]byte, 1)); done <- err }()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	if err := <-done; err == nil {
		t.Fatal("read after Close succeeded")
	}
}

// coalesceConn holds back the client's second flight (its Finished) and
// sends it with the next write, the first application data, in one TCP
// segment, as a client may.
type coalesceConn struct {
	net.Conn
	writes  int
	pending []byte
}

func (c *coalesceConn) Write(b []byte) (int, error) {
	c.writes++
	if c.writes == 2 {
		c.pending = append([]byte(nil), b...)
		return len(b), nil
	}
	if c.pending != nil {
		b = append(c.pending, b...)
		c.pending = nil
		_, err := c.Conn.Write(b)
		return len(b) - len(c.pending), err
	}
	return c.Conn.Write(b)
}

// TestFinishedWithData: application data that arrives with the client's
// Finished is left in the socket by the handshake and read by the record
// layer.
func TestFinishedWithData(t *testing.T) {
	addr, ch := listen(t, serverConf(t))
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	c := tls.Client(&coalesceConn{Conn: raw}, clientConf(t))
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("REGISTER with the Finished")); err != nil {
		t.Fatal(err)
	}
	a := next(t, ch)
	if !a.taken {
		t.Fatalf("not taken over: %v", a.kept)
	}
	got := make([]byte, 26)
	a.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(a.conn, got); err != nil || string(got) != "REGISTER with the Finished" {
		t.Fatalf("read %q, %v", got, err)
	}
}
