package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/pow"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/throttle"
)

// node is a cluster node serving its API on loopback.
type node struct {
	cfg  server.Config
	addr string
	adm  *server.Admin
	hc   *http.Client
}

func startNode(t *testing.T, tweak func(*server.Config)) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := server.Defaults(t.TempDir())
	cfg.Domain = "example.org"
	cfg.Hosts = []string{"127.0.0.1"}
	if tweak != nil {
		tweak(&cfg)
	}
	if _, err := server.Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { n.Serve(ctx, ln); n.Close(); close(done) }()
	adm, err := server.OpenAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := ca.ReadCert(filepath.Join(cfg.DataDir, ca.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, MaxConnsPerHost: 200, MaxIdleConnsPerHost: 200}
	t.Cleanup(func() { cancel(); <-done; adm.Close(); tr.CloseIdleConnections() })
	return &node{cfg: cfg, addr: ln.Addr().String(), adm: adm, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// post sends a request and returns the status and the error code, if any.
func (n *node) post(t *testing.T, path string, body any) (int, *api.Error) {
	b, _ := json.Marshal(body)
	res, err := n.hc.Post("https://"+n.addr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusOK {
		return res.StatusCode, nil
	}
	var eb api.ErrorBody
	json.Unmarshal(data, &eb)
	return res.StatusCode, eb.Error
}

// postOK sends a request and decodes a 200 answer into out; it returns
// the status.
func (n *node) postOK(t *testing.T, path string, body, out any) int {
	b, _ := json.Marshal(body)
	res, err := n.hc.Post("https://"+n.addr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return 0
	}
	defer res.Body.Close()
	if res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Error(err)
		}
	}
	return res.StatusCode
}

func (n *node) enroll(t *testing.T, user, device, pw string) *client.Profile {
	t.Helper()
	a, err := n.adm.AddUser(context.Background(), user, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := client.Enroll(context.Background(), client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: user, Device: device,
		Server: n.addr, CAFile: filepath.Join(n.cfg.DataDir, ca.CACertFile), Code: a.Code, Password: []byte(pw), Suite: keys.SuiteEC},
		&client.Options{KDF: kdf.DefaultParams})
	if err != nil {
		t.Fatalf("enroll %s: %v", user, err)
	}
	return p
}

func blind(t *testing.T) []byte {
	s := make([]byte, 32)
	rand.Read(s)
	b, err := kdf.Blind(s)
	if err != nil {
		t.Fatal(err)
	}
	return b.Message()
}

// race fires 200 copies of one request at once and counts the OPRF
// evaluations the node answered (200 OK).
func race(t *testing.T, n *node, path string, body func() any) int {
	const racers = 200
	// Open the connections first, so the racers do not queue behind TLS
	// handshakes and really arrive together.
	var warm sync.WaitGroup
	for range racers {
		warm.Add(1)
		go func() {
			defer warm.Done()
			if res, err := n.hc.Get("https://" + n.addr + api.PathHealth); err == nil {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}()
	}
	warm.Wait()
	var wg sync.WaitGroup
	var evaluated atomic.Int32
	start := make(chan struct{})
	for range racers {
		wg.Add(1)
		b := body()
		go func() {
			defer wg.Done()
			<-start
			status, e := n.post(t, path, b)
			switch {
			case status == http.StatusOK:
				evaluated.Add(1)
			case status == http.StatusTooManyRequests, status == http.StatusLocked, status == http.StatusForbidden:
			case status == http.StatusServiceUnavailable && e != nil && e.Code == "busy":
			default:
				t.Errorf("unexpected answer %d %+v", status, e)
			}
		}()
	}
	close(start)
	wg.Wait()
	return int(evaluated.Load())
}

// slowPolicy lets 3 attempts through, then makes the next wait an hour.
var slowPolicy = throttle.Policy{Free: 3, BaseDelay: time.Hour, MaxDelay: time.Hour, LockAfter: 10}

// TestConcurrentUnlocksGetOnlyFreeAttempts: 200 simultaneous unlocks of one
// device get no more OPRF evaluations than the 3 free attempts.
func TestConcurrentUnlocksGetOnlyFreeAttempts(t *testing.T) {
	n := startNode(t, func(c *server.Config) { c.DeviceAttempts, c.AccountAttempts = slowPolicy, slowPolicy })
	p := n.enroll(t, "alpha@example.org", "laptop", "alpha password")
	handle := p.Meta.Handle
	p.Close()
	got := race(t, n, api.PathUnlock, func() any { return api.Unlock{Handle: handle, Blind: blind(t)} })
	if got != slowPolicy.Free {
		t.Fatalf("%d of 200 concurrent unlocks were evaluated; the policy allows %d", got, slowPolicy.Free)
	}
}

// TestConcurrentFreeUnlocksAllPass: attempts within the free ones are never
// refused, however they interleave. Each attempt reads the clock before it
// waits for the counter, so one that waited may find the counter stamped
// later than its own clock by an attempt that went first; that once made
// it wait, and a device refused a right password when another device of
// the account unlocked at the same moment.
func TestConcurrentFreeUnlocksAllPass(t *testing.T) {
	generous := throttle.Policy{Free: 1000, BaseDelay: time.Hour, MaxDelay: time.Hour, LockAfter: 2000}
	n := startNode(t, func(c *server.Config) { c.DeviceAttempts, c.AccountAttempts = generous, generous })
	p := n.enroll(t, "alpha@example.org", "laptop", "alpha password")
	handle := p.Meta.Handle
	p.Close()
	if got := race(t, n, api.PathUnlock, func() any { return api.Unlock{Handle: handle, Blind: blind(t)} }); got != 200 {
		t.Fatalf("%d of 200 concurrent unlocks were evaluated, all within the %d free attempts", got, generous.Free)
	}
}

// TestConcurrentLoginsGetOnlyFreeAttempts: the same for new-device logins.
func TestConcurrentLoginsGetOnlyFreeAttempts(t *testing.T) {
	n := startNode(t, func(c *server.Config) { c.DeviceAttempts, c.AccountAttempts = slowPolicy, slowPolicy })
	n.enroll(t, "alpha@example.org", "laptop", "alpha password").Close()
	i := 0
	got := race(t, n, api.PathLoginBegin, func() any {
		i++
		return api.LoginBegin{User: "alpha@example.org", Device: "new" + string(rune('a'+i%26)), AccountBlind: blind(t), DeviceBlind: blind(t)}
	})
	if got != slowPolicy.Free {
		t.Fatalf("%d of 200 concurrent login/begin were evaluated; the policy allows %d", got, slowPolicy.Free)
	}
}

// TestLoginHumanCheck: past the free logins, login/begin asks for a proof of
// work; a forged or wrong one is refused, a solved one is accepted once.
func TestLoginHumanCheck(t *testing.T) {
	n := startNode(t, func(c *server.Config) {
		c.LoginAttempts = throttle.Policy{Free: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, LockAfter: 20, HumanAfter: 2}
		c.LoginPoWBits = 8
	})
	n.enroll(t, "alpha@example.org", "laptop", "alpha password").Close()
	begin := func(proof *api.Solution) (int, *api.Error) {
		return n.post(t, api.PathLoginBegin, api.LoginBegin{User: "alpha@example.org", Device: "desktop", AccountBlind: blind(t), DeviceBlind: blind(t), Proof: proof})
	}
	for i := range 2 {
		if status, e := begin(nil); status != http.StatusOK {
			t.Fatalf("free login %d: %d %+v", i, status, e)
		}
	}
	time.Sleep(5 * time.Millisecond) // past the delay, so the human check is what is asked
	status, e := begin(nil)
	if status != http.StatusForbidden || e == nil || e.Code != api.CodeHumanCheck || e.Challenge == nil || e.Challenge.Bits != 8 {
		t.Fatalf("third login without a proof: %d %+v", status, e)
	}
	tok := e.Challenge.Token
	counter, err := pow.Solve(context.Background(), "alpha@example.org", tok)
	if err != nil {
		t.Fatal(err)
	}
	forged := append([]byte{}, tok...)
	forged[1] = 1
	for _, bad := range []*api.Solution{{Token: forged, Counter: counter}, {Token: tok[:20], Counter: counter}} {
		time.Sleep(5 * time.Millisecond)
		status, e := begin(bad)
		if status != http.StatusForbidden || e.Code != api.CodeHumanCheck || e.Challenge == nil || !strings.Contains(e.Message, "proof sent was refused") {
			t.Fatalf("bad proof: %d %+v", status, e)
		}
	}
	time.Sleep(5 * time.Millisecond)
	if status, e := begin(&api.Solution{Token: tok, Counter: counter}); status != http.StatusOK {
		t.Fatalf("solved proof: %d %+v", status, e)
	}
	time.Sleep(5 * time.Millisecond)
	if status, e := begin(&api.Solution{Token: tok, Counter: counter}); status != http.StatusForbidden || e.Code != api.CodeHumanCheck || !strings.Contains(e.Message, "already used") {
		t.Fatalf("replayed proof: %d %+v", status, e)
	}
}

// TestEnrollBeginChecksTheCodeFirst: a wrong code is refused before the
// node evaluates the (here malformed) blinded elements or keeps a session.
func TestEnrollBeginChecksTheCodeFirst(t *testing.T) {
	n := startNode(t, nil)
	if _, err := n.adm.AddUser(context.Background(), "alpha@example.org", 0); err != nil {
		t.Fatal(err)
	}
	status, e := n.post(t, api.PathEnrollBegin, api.EnrollBegin{User: "alpha@example.org", Code: "AAAA-BBBB-CCCC-DDDD", Device: "d",
		AccountBlind: []byte("not a group element"), DeviceBlind: []byte("nor this")})
	if status != http.StatusForbidden || e == nil || e.Code != api.CodeCodeInvalid {
		t.Fatalf("wrong code: %d %+v", status, e)
	}
}

// TestFailedEnrollmentStepsFreeTheCode: a begin with malformed elements, or
// a finish that fails, leaves the code free for the next try at once.
func TestFailedEnrollmentStepsFreeTheCode(t *testing.T) {
	n := startNode(t, nil)
	a, err := n.adm.AddUser(context.Background(), "alpha@example.org", 0)
	if err != nil {
		t.Fatal(err)
	}
	status, e := n.post(t, api.PathEnrollBegin, api.EnrollBegin{User: "alpha@example.org", Code: a.Code, Device: "d",
		AccountBlind: []byte("not a group element"), DeviceBlind: blind(t)})
	if status != http.StatusBadRequest {
		t.Fatalf("malformed begin: %d %+v", status, e)
	}
	b, _ := json.Marshal(api.EnrollBegin{User: "alpha@example.org", Code: a.Code, Device: "d", AccountBlind: blind(t), DeviceBlind: blind(t)})
	res, err := n.hc.Post("https://"+n.addr+api.PathEnrollBegin, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var ev api.OPRFEvals
	json.NewDecoder(res.Body).Decode(&ev)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || ev.Session == "" {
		t.Fatalf("begin: %d", res.StatusCode)
	}
	if status, e := n.post(t, api.PathEnrollFinish, api.EnrollFinish{Session: ev.Session, CSR: []byte("no CSR"), AuthPub: make([]byte, 32),
		KDF: kdf.DefaultParams, Salts: kdf.NewSalts()}); status == http.StatusOK {
		t.Fatalf("finish with a bad CSR: %d %+v", status, e)
	}
	p, err := client.Enroll(context.Background(), client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "alpha@example.org", Device: "d",
		Server: n.addr, CAFile: filepath.Join(n.cfg.DataDir, ca.CACertFile), Code: a.Code, Password: []byte("a password"), Suite: keys.SuiteEC},
		&client.Options{KDF: kdf.DefaultParams})
	if err != nil {
		t.Fatalf("the code after failed steps: %v", err)
	}
	p.Close()
}

// TestLoginSessionsBounded: one account cannot hold more than a few
// exchanges in progress.
func TestLoginSessionsBounded(t *testing.T) {
	n := startNode(t, func(c *server.Config) {
		c.LoginAttempts = throttle.Policy{Free: 100, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, LockAfter: 200}
	})
	n.enroll(t, "alpha@example.org", "laptop", "alpha password").Close()
	ok := 0
	for range 10 {
		status, e := n.post(t, api.PathLoginBegin, api.LoginBegin{User: "alpha@example.org", Device: "desktop", AccountBlind: blind(t), DeviceBlind: blind(t)})
		switch {
		case status == http.StatusOK:
			ok++
		case status == http.StatusServiceUnavailable && e.Code == api.CodeBusy:
		default:
			t.Fatalf("login/begin: %d %+v", status, e)
		}
	}
	if ok == 0 || ok > 4 {
		t.Fatalf("%d of 10 login sessions open at once for one account", ok)
	}
}
