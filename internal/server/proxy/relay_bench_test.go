package proxy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/server/proxy"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

const relayDomain = "bench.test"

// relayEnv is a running proxy over real TLS on loopback with a real SQLite
// store, and pairs of devices with their own mutual-TLS connections: each
// receiver registered and listing its sender as a contact.
type relayEnv struct {
	store     store.Store // the store itself, not wrapped
	proxy     *proxy.Proxy
	addr      string
	senders   []*relayPeer
	receivers []*relayPeer
	got       atomic.Int64
}

type relayPeer struct {
	account string
	ua      *sipgo.UserAgent
	cli     *sipgo.Client
	last    atomic.Uint64 // last sequence number received, to check order
	sent    uint64        // last sequence number sent
	order   atomic.Bool   // set when a message arrived out of order or twice
}

// certAuth authenticates devices by a certificate issued by the test CA
// whose common name is account/device, and reads the device from the store,
// as the node does.
type certAuth struct {
	roots *x509.CertPool
	st    store.Store
}

func (a *certAuth) Certificate(ctx context.Context, cert *x509.Certificate) (proxy.Identity, error) {
	if _, err := cert.Verify(x509.VerifyOptions{Roots: a.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return proxy.Identity{}, &proxy.Refusal{Status: 403, Reason: "Forbidden"}
	}
	acct, dev, _ := strings.Cut(cert.Subject.CommonName, "/")
	d, err := a.st.DeviceByName(ctx, acct, dev)
	if err != nil {
		return proxy.Identity{}, err
	}
	return proxy.Identity{AccountID: d.AccountID, DeviceID: d.ID, Account: acct, Device: dev}, nil
}

func (a *certAuth) SIPCredential(context.Context, string) (proxy.Identity, []byte, error) {
	return proxy.Identity{}, nil, &proxy.Refusal{Status: 403, Reason: "Forbidden"}
}

// Devices here use certificates only; no digest attempt reaches these.
func (a *certAuth) SIPAttempt(context.Context, int64) error  { return nil }
func (a *certAuth) SIPVerified(context.Context, int64) error { return nil }

type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(tb testing.TB) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{key: key, cert: c}
}

func (ca *testCA) issue(tb testing.TB, cn string, server bool) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// newRelayEnv starts the proxy on a fresh store; wrap, if not nil, gives
// the store the proxy uses.
func newRelayEnv(tb testing.TB, pairs int, wrap func(store.Store) store.Store, storeFirst bool) *relayEnv {
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	db, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "store.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	var st store.Store = db
	if wrap != nil {
		st = wrap(db)
	}
	env := &relayEnv{store: db}
	ca := newTestCA(tb)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	srvTLS := &tls.Config{Certificates: []tls.Certificate{ca.issue(tb, "127.0.0.1", true)}, MinVersion: tls.VersionTLS13, ClientAuth: tls.RequestClientCert}
	p, err := proxy.New(proxy.Config{Domain: relayDomain, Store: st, Auth: &certAuth{roots: roots, st: st}, TLS: srvTLS, Rate: 1e9, Burst: 1 << 30, StoreFirst: storeFirst})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	// The node's goroutines carry a label, so that a profile of the
	// benchmark tells the node from the test devices (-tagfocus side=node).
	go pprof.Do(ctx, pprof.Labels("side", "node"), func(ctx context.Context) { defer close(done); p.Serve(ctx, ln) })
	tb.Cleanup(func() { cancel(); <-done })
	env.proxy, env.addr = p, ln.Addr().String()

	device := func(user string) *relayPeer {
		a, err := st.CreateAccount(ctx, user+"@"+relayDomain, time.Now())
		if err != nil {
			tb.Fatal(err)
		}
		if err := st.SetAccountStatus(ctx, a.Name, store.StatusActive); err != nil {
			tb.Fatal(err)
		}
		cert := ca.issue(tb, a.Name+"/d", false)
		leaf, _ := x509.ParseCertificate(cert.Certificate[0])
		if _, err := st.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: "d", Handle: a.Name, Suite: "ec", Serial: leaf.SerialNumber.Text(16),
			Cert: leaf.Raw, SealedOPRF: []byte{}, Created: time.Now()}); err != nil {
			tb.Fatal(err)
		}
		ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname(relayDomain), sipgo.WithUserAgenTLSConfig(&tls.Config{
			Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}))
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { ua.Close() })
		cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			tb.Fatal(err)
		}
		return &relayPeer{account: a.Name, ua: ua, cli: cli}
	}
	for i := 0; i < pairs; i++ {
		s, r := device(fmt.Sprintf("s%d", i)), device(fmt.Sprintf("r%d", i))
		ra, _ := db.Account(ctx, r.account)
		sa, _ := db.Account(ctx, s.account)
		if err := db.AddContact(ctx, ra.ID, s.account, time.Now()); err != nil {
			tb.Fatal(err)
		}
		if err := db.AddContact(ctx, sa.ID, r.account, time.Now()); err != nil {
			tb.Fatal(err)
		}
		srv, err := sipgo.NewServer(r.ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			tb.Fatal(err)
		}
		srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
			if b := req.Body(); len(b) >= 8 {
				n := beUint64(b)
				if n <= r.last.Load() {
					r.order.Store(true)
				}
				r.last.Store(n)
			}
			env.got.Add(1)
			tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
		if err := env.do(ctx, r, sip.REGISTER, r.account, nil); err != nil {
			tb.Fatal(err)
		}
		env.senders, env.receivers = append(env.senders, s), append(env.receivers, r)
	}
	return env
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func beUint64(b []byte) uint64 {
	var n uint64
	for _, c := range b[:8] {
		n = n<<8 | uint64(c)
	}
	return n
}

func sipURI(account string) sip.Uri {
	var u sip.Uri
	sip.ParseUri("sip:"+account, &u)
	return u
}

// do sends one request from p to the proxy and waits for its 200.
func (e *relayEnv) do(ctx context.Context, p *relayPeer, method sip.RequestMethod, to string, body []byte) error {
	req := sip.NewRequest(method, sipURI(to))
	from := &sip.FromHeader{Address: sipURI(p.account), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sipURI(to), Params: sip.NewParams()})
	if method == sip.REGISTER {
		req.AppendHeader(&sip.ContactHeader{Address: sipURI(p.account), Params: sip.NewParams()})
		req.AppendHeader(sip.NewHeader("Expires", "600"))
	} else {
		ct := sip.ContentTypeHeader(proxy.EnvelopeType)
		req.AppendHeader(&ct)
		req.SetBody(body)
	}
	req.SetTransport("TLS")
	req.SetDestination(e.addr)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := p.cli.Do(cctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: %d %s", method, res.StatusCode, res.Reason)
	}
	return nil
}

// relay sends n MESSAGEs of size bytes, spread over the senders, each
// sender one at a time as a device does, and waits until all arrived.
func (e *relayEnv) relay(tb testing.TB, n, size int) {
	ctx := context.Background()
	start := e.got.Load()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range e.senders {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := e.senders[i]
			for next.Add(1) <= int64(n) {
				p.sent++
				// Bodies are ciphertext-like: sipgo drops any read made only
				// of zero bytes, so a zero-filled body would stall on the
				// 512-byte reads the node configures (a known sipgo limit).
				body := make([]byte, size)
				for k := range body {
					body[k] = byte(k*131 + 7)
				}
				for k := 0; k < 8; k++ {
					body[k] = byte(p.sent >> (56 - 8*k))
				}
				if err := e.do(ctx, p, sip.MESSAGE, e.receivers[i].account, body); err != nil {
					failed.Add(1)
					tb.Error(err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	if failed.Load() > 0 {
		tb.FailNow()
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.got.Load()-start < int64(n) {
		if time.Now().After(deadline) {
			tb.Fatalf("delivered %d of %d", e.got.Load()-start, n)
		}
		time.Sleep(200 * time.Microsecond)
	}
	for _, r := range e.receivers {
		if r.order.Load() {
			tb.Fatalf("%s got messages out of order", r.account)
		}
	}
}

// BenchmarkRelayMessage is the relay's hot path end to end: MESSAGE over
// mutual TLS, authentication, contact check, rate limit, delivery over
// the receiver's TLS connection and its 200 before the sender's 200
// (cut-through, the receivers being online and idle); store-first adds the
// durable store before the 200 and forgetting the delivered copy, the
// path of a device that is offline or busy. ns/op is per relayed MESSAGE;
// each sender device has one MESSAGE in flight at a time, as devices do.
func BenchmarkRelayMessage(b *testing.B) {
	for _, pairs := range []int{8, 64} {
		b.Run(fmt.Sprintf("senders=%d", pairs), func(b *testing.B) { benchRelay(b, pairs, false) })
	}
	// Every copy stored and forgotten, as for a device that is offline or
	// busy: the path the relay took for every MESSAGE before cut-through.
	b.Run("store-first/senders=64", func(b *testing.B) { benchRelay(b, 64, true) })
}

func benchRelay(b *testing.B, pairs int, storeFirst bool) {
	env := newRelayEnv(b, pairs, nil, storeFirst)
	env.relay(b, 4*pairs, 600) // warm up connections and caches
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	env.relay(b, b.N, 600)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	// CPU time moves less than the rate on a shared machine. It
	// counts the whole process: the proxy and the test devices.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/msg")
}

// TestRelayInOrder: every MESSAGE accepted with 200 arrives, once per
// device, in the order it was sent, with several senders at once.
func TestRelayInOrder(t *testing.T) {
	for _, storeFirst := range []bool{false, true} {
		env := newRelayEnv(t, 4, nil, storeFirst)
		env.relay(t, 2000, 600)
		if got := env.got.Load(); got != 2000 {
			t.Fatalf("store first %v: delivered %d, want 2000", storeFirst, got)
		}
	}
}

// slowForget delays forgetting delivered copies until release is closed.
type slowForget struct {
	store.Store
	release chan struct{}
	waiting atomic.Int64
}

func (s *slowForget) Delivered(ctx context.Context, seq int64) error {
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.Store.Delivered(ctx, seq)
}

// TestDeliveryDoesNotWaitForForget: the next copy goes to the device while
// the previous one's forget has not committed yet, and once the forgets
// commit no copy was delivered twice and none is left.
func TestDeliveryDoesNotWaitForForget(t *testing.T) {
	slow := &slowForget{release: make(chan struct{})}
	env := newRelayEnv(t, 1, func(st store.Store) store.Store { slow.Store = st; return slow }, true)
	released := false
	defer func() {
		if !released {
			close(slow.release)
		}
	}()
	ctx := context.Background()
	s, r := env.senders[0], env.receivers[0]
	for i := 1; i <= 3; i++ {
		body := make([]byte, 64)
		body[7] = byte(i)
		if err := env.do(ctx, s, sip.MESSAGE, r.account, body); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for env.got.Load() < int64(i) {
			if time.Now().After(deadline) {
				t.Fatalf("message %d not delivered while %d forgets wait", i, slow.waiting.Load())
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(slow.release)
	released = true
	rcpt, err := env.store.Account(ctx, r.account)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, err := env.store.StoredBytes(ctx, rcpt.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still stored after the forgets", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A fourth message after the forgets: delivered once, in order.
	body := make([]byte, 64)
	body[7] = 4
	if err := env.do(ctx, s, sip.MESSAGE, r.account, body); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if got := env.got.Load(); got != 4 || r.order.Load() {
		t.Fatalf("delivered %d (want 4), out of order or twice: %v", got, r.order.Load())
	}
}

// countPending counts reads of stored copies.
type countPending struct {
	store.Store
	reads atomic.Int64
}

func (c *countPending) Pending(ctx context.Context, deviceID int64, limit int) ([]store.Delivery, error) {
	c.reads.Add(1)
	return c.Store.Pending(ctx, deviceID, limit)
}

// TestDeliveryReadsOnce: one MESSAGE to an idle registered device costs one
// read of its stored copies, not a second one that finds only the copy
// just sent.
func TestDeliveryReadsOnce(t *testing.T) {
	cp := &countPending{}
	env := newRelayEnv(t, 1, func(st store.Store) store.Store { cp.Store = st; return cp }, true)
	ctx := context.Background()
	// The delivery run the REGISTER started reads too; let it end.
	for n := int64(-1); n != cp.reads.Load(); time.Sleep(100 * time.Millisecond) {
		n = cp.reads.Load()
	}
	for i := 1; i <= 5; i++ {
		before := cp.reads.Load()
		body := make([]byte, 64)
		body[7] = byte(i)
		if err := env.do(ctx, env.senders[0], sip.MESSAGE, env.receivers[0].account, body); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(3 * time.Second)
		for env.got.Load() < int64(i) {
			if time.Now().After(deadline) {
				t.Fatalf("message %d not delivered", i)
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let the delivery run end
		if n := cp.reads.Load() - before; n != 1 {
			t.Fatalf("message %d: %d reads of stored copies", i, n)
		}
	}
}
