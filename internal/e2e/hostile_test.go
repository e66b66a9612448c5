package e2e

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The attacks of a hostile client against the SIP port, on loopback,
// against the real phonexd.

// configure appends settings to the node's phonexd.conf (later lines win).
func (c *cluster) configure(lines ...string) {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(c.data, "phonexd.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, strings.Join(lines, "\n"))
}

func (c *cluster) caPool() *x509.CertPool {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.data, "ca.pem"))
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(b)
	return pool
}

// sipClient is a raw SIP over TLS connection.
type sipClient struct {
	t *testing.T
	c *tls.Conn
	r *bufio.Reader
}

func (c *cluster) dialSIP(from string) (*sipClient, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	conn, err := tls.DialWithDialer(d, "tcp", c.n.sip, &tls.Config{RootCAs: c.caPool(), ServerName: "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	return &sipClient{t: c.t, c: conn, r: bufio.NewReader(conn)}, nil
}

func (c *cluster) mustDialSIP() *sipClient {
	c.t.Helper()
	s, err := c.dialSIP("")
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.c.Close() })
	return s
}

func (s *sipClient) send(msg string) {
	s.t.Helper()
	if _, err := s.c.Write([]byte(msg)); err != nil {
		s.t.Fatal(err)
	}
}

// recv reads one response; "" when the connection ends first.
func (s *sipClient) recv(within time.Duration) string {
	s.c.SetReadDeadline(time.Now().Add(within))
	var head bytes.Buffer
	for {
		l, err := s.r.ReadString('\n')
		head.WriteString(l)
		if err != nil {
			return ""
		}
		if l == "\r\n" {
			break
		}
	}
	m := regexp.MustCompile(`(?mi)^(?:Content-Length|l)\s*:\s*(\d+)`).FindStringSubmatch(head.String())
	if m != nil {
		n, _ := strconv.Atoi(m[1])
		body := make([]byte, n)
		if _, err := io.ReadFull(s.r, body); err != nil {
			return ""
		}
		head.Write(body)
	}
	return head.String()
}

// closed reports whether the node ends the connection within d.
func (s *sipClient) closed(within time.Duration) bool {
	s.c.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, s.r)
	var ne net.Error
	return err == nil || !(asNetErr(err, &ne) && ne.Timeout())
}

func asNetErr(err error, ne *net.Error) bool {
	e, ok := err.(net.Error)
	if ok {
		*ne = e
	}
	return ok
}

func status(res string) int {
	f := strings.Fields(res)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func request(method, ruri string, cseq int, extra string, body string) string {
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK%d%d\r\nFrom: <sip:sippy@example.org>;tag=t%d\r\n"+
		"To: <sip:alpha@example.org>\r\nCall-ID: hostile-%d-%d\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n%sContent-Length: %d\r\n\r\n%s",
		method, ruri, cseq, time.Now().UnixNano(), cseq, cseq, time.Now().UnixNano(), cseq, method, extra, len(body), body)
}

// TestSIPSurvivesDescriptorExhaustion opens plain TCP connections to the
// SIP port of a node limited to 256 file descriptors until it runs out:
// the node must go on serving both ports.
func TestSIPSurvivesDescriptorExhaustion(t *testing.T) {
	prlimit := requirePeer(t, "prlimit")
	c := newCluster(t)
	// Caps far above the limit: only the descriptor limit stops the flood.
	c.configure("sip_max_connections = 100000", "sip_max_connections_per_source = 100000")
	c.n = serveUnder(t, []string{prlimit, "--nofile=256:256"}, c.data, "127.0.0.1:0", "127.0.0.1:0")
	var flood []net.Conn
	defer func() {
		for _, f := range flood {
			f.Close()
		}
	}()
	for i := 0; i < 600; i++ {
		f, err := net.DialTimeout("tcp", c.n.sip, 2*time.Second)
		if err != nil {
			break
		}
		flood = append(flood, f)
	}
	time.Sleep(500 * time.Millisecond)
	if c.n.cmd.ProcessState != nil || c.n.cmd.Process.Signal(syscall.Signal(0)) != nil {
		t.Fatalf("phonexd exited under the flood: %s", c.n.logs)
	}
	// The API answers while the flood is held.
	api, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.n.api, &tls.Config{RootCAs: c.caPool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("API during the flood: %v\n%s", err, c.n.logs)
	}
	api.Close()
	for _, f := range flood {
		f.Close()
	}
	flood = nil
	// And SIP serves again once the flood is gone.
	waitFor(t, "the SIP port to answer after the flood", 30*time.Second, func() bool {
		s, err := c.dialSIP("")
		if err != nil {
			return false
		}
		defer s.c.Close()
		s.c.Write([]byte(request("OPTIONS", "sip:alpha@example.org", 1, "", "")))
		return status(s.recv(3*time.Second)) == 200
	})
	if !strings.Contains(c.n.logs.String(), "file descriptor limit") {
		t.Errorf("no log line about the descriptor limit:\n%s", c.n.logs)
	}
}

// TestSIPConnectionCaps: a source gets no more connections than its cap;
// other sources still get theirs.
func TestSIPConnectionCaps(t *testing.T) {
	c := newCluster(t)
	c.configure("sip_max_connections_per_source = 5")
	c.n = serve(t, c.data)
	var ok int
	for i := 0; i < 8; i++ {
		s, err := c.dialSIP("127.0.0.1")
		if err != nil {
			continue
		}
		defer s.c.Close()
		s.send(request("OPTIONS", "sip:alpha@example.org", 1, "", ""))
		if status(s.recv(3*time.Second)) == 200 {
			ok++
		}
	}
	if ok != 5 {
		t.Fatalf("%d connections served from one source, want 5", ok)
	}
	s, err := c.dialSIP("127.0.0.2")
	if err != nil {
		t.Fatalf("another source: %v", err)
	}
	defer s.c.Close()
	s.send(request("OPTIONS", "sip:alpha@example.org", 1, "", ""))
	if res := s.recv(3 * time.Second); status(res) != 200 {
		t.Fatalf("another source: %q", res)
	}
}

// TestSIPTimeouts: a silent TCP connection, an idle TLS connection and a
// request dribbled one byte at a time are all cut; a registered device's
// connection is kept past the idle timeout.
func TestSIPTimeouts(t *testing.T) {
	c := newCluster(t)
	c.configure("sip_handshake_timeout = 1s", "sip_read_timeout = 1s", "sip_idle_timeout = 2s")
	c.n = serve(t, c.data)

	raw, err := net.Dial("tcp", c.n.sip)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	start := time.Now()
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || time.Since(start) > 4*time.Second {
		t.Fatalf("connection without a handshake kept %v: %v", time.Since(start), err)
	}

	idle := c.mustDialSIP()
	start = time.Now()
	if !idle.closed(5*time.Second) || time.Since(start) < 1500*time.Millisecond {
		t.Fatalf("idle TLS connection: closed after %v", time.Since(start))
	}

	slow := c.mustDialSIP()
	msg := request("OPTIONS", "sip:alpha@example.org", 1, "", "")
	start = time.Now()
	cut := false
	for i := 0; i < len(msg) && !cut; i++ {
		if _, err := slow.c.Write([]byte{msg[i]}); err != nil {
			cut = true
			break
		}
		time.Sleep(200 * time.Millisecond)
		slow.c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := slow.r.ReadByte(); err != nil {
			var ne net.Error
			cut = !(asNetErr(err, &ne) && ne.Timeout())
		}
	}
	if !cut || time.Since(start) > 4*time.Second {
		t.Fatalf("a request sent one byte at a time was kept %v", time.Since(start))
	}

	// A registered PhoneX device stays reachable on its connection past
	// the idle timeout: it is not cut between its refreshes (every 15 s).
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	a1 := c.listen("alpha/a1")
	waitFor(t, "alpha/a1 registered", 20*time.Second, func() bool { return a1.has("ready", "") })
	// Past the idle timeout: a connection opened once a1 is registered
	// and left silent is cut for it, so a1's has been silent longer.
	if silent := c.mustDialSIP(); !silent.closed(15 * time.Second) {
		t.Fatal("a silent connection was not cut within 15 s")
	}
	c.mustPx("bravo/b1", "send", "alpha@example.org", "still there?")
	waitFor(t, "delivery over the kept connection", 15*time.Second, func() bool {
		return len(a1.texts(func(e event) bool { return e.Text == "still there?" })) == 1
	})
}

// TestSIPStrictParsing: smuggling by a second Content-Length, an unknown
// version or scheme, NUL bytes: each gets its own answer, nothing is echoed,
// the smuggled request is never run.
func TestSIPStrictParsing(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)

	s := c.mustDialSIP()
	smuggled := request("OPTIONS", "sip:x@example.org", 2, "", "")
	first := strings.Replace(request("OPTIONS", "sip:alpha@example.org", 1, "", ""), "Content-Length: 0\r\n",
		fmt.Sprintf("Content-Length: 0\r\nContent-Length: %d\r\n", len(smuggled)), 1)
	s.send(first + smuggled)
	if res := s.recv(3 * time.Second); status(res) != 400 {
		t.Fatalf("two Content-Length headers: %q", res)
	}
	if res := s.recv(2 * time.Second); res != "" {
		t.Fatalf("the smuggled request was answered: %q", res)
	}

	for _, tc := range []struct {
		name, msg string
		want      int
	}{
		{"SIP/3.0", strings.Replace(request("OPTIONS", "sip:alpha@example.org", 1, "", ""), " SIP/2.0\r\n", " SIP/3.0\r\n", 1), 505},
		{"tel URI", request("OPTIONS", "tel:+15551234", 1, "", ""), 416},
		{"bad request line", "OPTIONS  sip:alpha@example.org SIP/2.0\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 400},
		{"NUL in a header", request("OPTIONS", "sip:alpha@example.org", 1, "Subject: a\x00<evil>\r\n", ""), 400},
	} {
		s := c.mustDialSIP()
		s.send(tc.msg)
		res := s.recv(3 * time.Second)
		if status(res) != tc.want {
			t.Errorf("%s: %q, want %d", tc.name, res, tc.want)
		}
		if strings.ContainsRune(res, 0) || strings.Contains(res, "evil") {
			t.Errorf("%s: echoed %q", tc.name, res)
		}
	}
	// After a refusal that keeps the framing, the connection goes on.
	s = c.mustDialSIP()
	s.send(request("OPTIONS", "tel:+15551234", 1, "", "") + request("OPTIONS", "sip:alpha@example.org", 2, "", ""))
	if a, b := status(s.recv(3*time.Second)), status(s.recv(3*time.Second)); a != 416 || b != 200 {
		t.Fatalf("416 then 200 expected, got %d %d", a, b)
	}
}

// TestSIPTLSAEADOnly: a TLS 1.2 client offering only CBC suites with SHA-1
// is refused; one offering AES-GCM is served.
func TestSIPTLSAEADOnly(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	dial := func(suites ...uint16) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.n.sip, &tls.Config{RootCAs: c.caPool(),
			ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: suites})
		if err == nil {
			conn.Close()
		}
		return err
	}
	if err := dial(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA); err == nil {
		t.Fatal("a CBC-only TLS 1.2 client completed the handshake")
	}
	if err := dial(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256); err != nil {
		t.Fatalf("AES-GCM over TLS 1.2 refused: %v", err)
	}
}

func md5hex(s string) string { b := md5.Sum([]byte(s)); return hex.EncodeToString(b[:]) }

// digestAnswer answers a 401's challenge (RFC 2617 §3.2.2.1, qop=auth).
func digestAnswer(t *testing.T, challenge, user, password, method, uri string, nc int) string {
	t.Helper()
	m := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(challenge)
	if m == nil {
		t.Fatalf("no nonce in %q", challenge)
	}
	ha1 := md5hex(user + ":example.org:" + password)
	resp := md5hex(fmt.Sprintf("%s:%s:%08x:cn:auth:%s", ha1, m[1], nc, md5hex(method+":"+uri)))
	return fmt.Sprintf("Authorization: Digest username=\"%s\", realm=\"example.org\", nonce=\"%s\", uri=\"%s\", qop=auth, nc=%08x, cnonce=\"cn\", response=\"%s\", algorithm=MD5\r\n",
		user, m[1], uri, nc, resp)
}

// TestSIPDigestGuessing: wrong digest answers are free a few times, then
// wait (503 with Retry-After) instead of being checked; the failures are
// logged once per burst with source and account; a replayed answer and
// one for another Request-URI are refused.
func TestSIPDigestGuessing(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "sippy@example.org")
	cred := decode[map[string]string](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "sippy@example.org", "--name", "desk", "--json"))
	user := cred["username"]
	register := func(cseq int, extra string) string {
		return strings.Replace(request("REGISTER", "sip:example.org", cseq, extra+"Contact: <sip:sippy@127.0.0.1:5999;transport=tls>\r\n", ""),
			"To: <sip:alpha@example.org>", "To: <sip:sippy@example.org>", 1)
	}
	s := c.mustDialSIP()
	s.send(register(1, ""))
	ch := s.recv(3 * time.Second)
	if status(ch) != 401 {
		t.Fatalf("no challenge: %q", ch)
	}
	// The right answer works, once.
	ok := digestAnswer(t, ch, user, cred["password"], "REGISTER", "sip:example.org", 1)
	s.send(register(2, ok))
	if res := s.recv(3 * time.Second); status(res) != 200 {
		t.Fatalf("right password: %q", res)
	}
	s.send(register(3, ok))
	if res := s.recv(3 * time.Second); status(res) != 401 || !strings.Contains(res, "stale=true") {
		t.Fatalf("replayed answer: %q", res)
	}
	// An answer computed for another Request-URI.
	other := digestAnswer(t, ch, user, cred["password"], "REGISTER", "sip:elsewhere.example.org", 2)
	s.send(register(4, other))
	if res := s.recv(3 * time.Second); status(res) != 400 {
		t.Fatalf("answer for another uri: %q", res)
	}
	var got []int
	for i := 0; i < 30; i++ {
		bad := digestAnswer(t, ch, user, fmt.Sprint("guess", i), "REGISTER", "sip:example.org", 10+i)
		s.send(register(10+i, bad))
		res := s.recv(3 * time.Second)
		got = append(got, status(res))
		if status(res) == 503 && !strings.Contains(res, "Retry-After:") {
			t.Fatalf("503 without Retry-After: %q", res)
		}
	}
	// Account policy defaults: 5 attempts free, then a doubling delay. The
	// replayed answer above counted against the device (a replay must not
	// reset its counter), so 4 wrong passwords are left before the wait.
	if fmt.Sprint(got[:5]) != "[403 403 403 403 503]" || strings.Count(fmt.Sprint(got), "403") != 4 {
		t.Fatalf("answers to 30 wrong passwords: %v", got)
	}
	// The device itself is throttled too: from another source, even the
	// right password waits.
	o, err := c.dialSIP("127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	defer o.c.Close()
	o.send(register(100, ""))
	ch = o.recv(3 * time.Second)
	o.send(register(101, digestAnswer(t, ch, user, cred["password"], "REGISTER", "sip:example.org", 1)))
	if res := o.recv(3 * time.Second); status(res) != 503 || !strings.Contains(res, "Retry-After:") {
		t.Fatalf("right password from another source while the device waits: %q", res)
	}
	n := strings.Count(c.n.logs.String(), "sip digest authentication failed")
	if n != 1 || !strings.Contains(c.n.logs.String(), "source=127.0.0.1 account="+user) {
		t.Fatalf("%d log lines for one burst:\n%s", n, c.n.logs)
	}
	if strings.Contains(c.n.logs.String(), "guess") {
		t.Fatal("a guessed password reached the log")
	}
}

// TestSIPUnauthenticatedRate: requests without a device certificate are
// limited per source address.
func TestSIPUnauthenticatedRate(t *testing.T) {
	c := newCluster(t)
	c.configure("sip_unauth_rate = 1", "sip_unauth_burst = 10")
	c.n = serve(t, c.data)
	s := c.mustDialSIP()
	var limited, ok int
	for i := 0; i < 40; i++ {
		method := []string{"REGISTER", "MESSAGE", "INVITE", "SUBSCRIBE"}[i%4]
		s.send(request(method, "sip:alpha@example.org", i+1, "", ""))
		res := s.recv(3 * time.Second)
		switch status(res) {
		case 503:
			limited++
			if !strings.Contains(res, "Retry-After:") {
				t.Fatalf("503 without Retry-After: %q", res)
			}
		case 0:
			t.Fatalf("request %d: no answer", i)
		default:
			ok++
		}
	}
	if ok > 12 || limited < 28 {
		t.Fatalf("%d answered, %d limited: want about 10 answered", ok, limited)
	}
	// Another source is not limited.
	o, err := c.dialSIP("127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	defer o.c.Close()
	o.send(request("OPTIONS", "sip:alpha@example.org", 1, "", ""))
	if res := o.recv(3 * time.Second); status(res) != 200 {
		t.Fatalf("another source: %q", res)
	}
}

// TestSIPKeepAlive: a double CRLF ping gets a CRLF pong (RFC 5626
// §4.4.1), but keep-alives keep only a registered connection: without a
// registration they do not hold off the idle timeout, or a client sending
// a CRLF a second would be kept forever.
func TestSIPKeepAlive(t *testing.T) {
	c := newCluster(t)
	c.configure("sip_idle_timeout = 3s")
	c.n = serve(t, c.data)
	s := c.mustDialSIP()
	start := time.Now()
	for i := 0; i < 2; i++ {
		time.Sleep(time.Second)
		s.send("\r\n\r\n")
		s.c.SetReadDeadline(time.Now().Add(2 * time.Second))
		pong := make([]byte, 2)
		if _, err := io.ReadFull(s.r, pong); err != nil || string(pong) != "\r\n" {
			t.Fatalf("ping %d: %q %v", i, pong, err)
		}
	}
	for time.Since(start) < 10*time.Second {
		time.Sleep(500 * time.Millisecond)
		if _, err := s.c.Write([]byte("\r\n\r\n")); err != nil {
			break
		}
	}
	if !s.closed(time.Second) || time.Since(start) > 6*time.Second {
		t.Fatalf("an unregistered connection sending only keep-alives kept %v", time.Since(start))
	}
}
