package client_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/throttle"
)

// fastKDF keeps tests quick; production profiles use kdf.DefaultParams.
var fastKDF = kdf.Params{LogN: 14, R: 8, P: 1}

type cluster struct {
	t    *testing.T
	cfg  server.Config
	addr string
	adm  *server.Admin
	stop context.CancelFunc
	done chan error
}

func startCluster(t *testing.T, tweak func(*server.Config)) *cluster {
	t.Helper()
	ctx := context.Background()
	cfg := server.Defaults(t.TempDir())
	cfg.Domain = "example.org"
	cfg.Hosts = []string{"127.0.0.1"}
	cfg.KDFMinLogN = fastKDF.LogN
	if tweak != nil {
		tweak(&cfg)
	}
	if _, err := server.Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, cfg: cfg, addr: ln.Addr().String(), done: make(chan error, 1)}
	n, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	c.stop = cancel
	go n.ServeSIP(sctx, sln)
	go func() { c.done <- n.Serve(sctx, ln); n.Close() }()
	if c.adm, err = server.OpenAdmin(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.shutdown(); c.adm.Close() })
	return c
}

func (c *cluster) shutdown() {
	if c.stop != nil {
		c.stop()
		<-c.done
		c.stop = nil
	}
}

func (c *cluster) code(user string) string {
	a, err := c.adm.AddUser(context.Background(), user, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	return a.Code
}

func (c *cluster) enroll(user, device, pw string, suite keys.Suite) *client.Profile {
	c.t.Helper()
	p, err := client.Enroll(context.Background(), client.EnrollRequest{Dir: filepath.Join(c.t.TempDir(), "p"), User: user, Device: device,
		Server: c.addr, CAFile: filepath.Join(c.cfg.DataDir, ca.CACertFile), Code: c.code(user), Password: []byte(pw), Suite: suite, RSABits: 2048},
		&client.Options{KDF: fastKDF})
	if err != nil {
		c.t.Fatalf("enroll %s: %v", user, err)
	}
	return p
}

func apiCode(err error) string {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

func TestProfileLifecycle(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	dir := alpha.Dir
	alpha.Close()
	bravo := c.enroll("bravo@example.org", "phone", "bravo password", keys.SuiteRSA)
	defer bravo.Close()

	p, err := client.Open(ctx, dir, []byte("alpha password"), nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := p.Whoami(ctx)
	if err != nil || w.Identity != "alpha@example.org/laptop" || w.Suite != "ec" {
		t.Fatalf("whoami %+v %v", w, err)
	}
	ct, err := p.AddContact(ctx, "bravo@example.org")
	if err != nil || len(ct.Devices) != 1 || ct.Devices[0].Suite != "rsa" {
		t.Fatalf("add contact: %+v %v", ct, err)
	}
	if _, err := p.AddContact(ctx, "nobody@example.org"); apiCode(err) != api.CodeUnknownUser {
		t.Fatalf("unknown contact: %v", err)
	}
	if _, err := p.AddContact(ctx, "carol@other.example"); apiCode(err) != api.CodeFederation {
		t.Fatalf("foreign contact: %v", err)
	}
	cs, err := p.Contacts(ctx)
	if err != nil || len(cs) != 1 || cs[0].User != "bravo@example.org" {
		t.Fatalf("contacts %+v %v", cs, err)
	}
	// Password change: the new password opens, the old one no longer does.
	if err := p.ChangePassword(ctx, []byte("alpha password"), []byte("new alpha password"), &client.Options{KDF: fastKDF, MinKDF: fastKDF}); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := client.Open(ctx, dir, []byte("alpha password"), nil); !errors.Is(err, client.ErrWrongPassword) {
		t.Fatalf("old password after change: %v", err)
	}
	p, err = client.Open(ctx, dir, []byte("new alpha password"), nil)
	if err != nil {
		t.Fatalf("new password: %v", err)
	}
	if cs, err := p.Contacts(ctx); err != nil || len(cs) != 1 {
		t.Fatalf("contacts after password change: %v", err)
	}
	p.Close()
	// A further device logs in with the new password, not the old.
	req := client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p2"), User: "alpha@example.org", Device: "desktop", Server: c.addr,
		Fingerprint: mustFP(t, c), Password: []byte("alpha password")}
	lo := &client.Options{MinKDF: fastKDF}
	if _, err := client.Login(ctx, req, lo); apiCode(err) != api.CodeWrongPassword {
		t.Fatalf("login with the old password: %v", err)
	}
	req.Password = []byte("new alpha password")
	p2, err := client.Login(ctx, req, lo)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := p2.Devices(ctx)
	if err != nil || len(ds) != 2 {
		t.Fatalf("devices %+v %v", ds, err)
	}
	p2.Close()
}

func mustFP(t *testing.T, c *cluster) string {
	cert, err := ca.ReadCert(filepath.Join(c.cfg.DataDir, ca.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return ca.Fingerprint(cert)
}

func TestThrottleAndLockout(t *testing.T) {
	c := startCluster(t, func(cfg *server.Config) {
		cfg.DeviceAttempts = throttleFast(2, 5)
		cfg.AccountAttempts = throttleFast(4, 50)
	})
	ctx := context.Background()
	p := c.enroll("alpha@example.org", "laptop", "right password", keys.SuiteEC)
	dir := p.Dir
	p.Close()
	var wp *client.WrongPasswordError
	for i := 0; i < 5; i++ {
		_, err := client.Open(ctx, dir, []byte("wrong password"), nil)
		for apiCode(err) == api.CodeThrottled {
			var ae *api.Error
			errors.As(err, &ae)
			if ae.Wait() <= 0 || ae.Wait() > time.Second {
				t.Fatalf("retry after %v", ae.Wait())
			}
			time.Sleep(ae.Wait())
			_, err = client.Open(ctx, dir, []byte("wrong password"), nil)
		}
		if !errors.As(err, &wp) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if wp.Remaining != 0 {
		t.Fatalf("remaining after 5 of 5: %d", wp.Remaining)
	}
	time.Sleep(time.Second)
	if _, err := client.Open(ctx, dir, []byte("right password"), nil); apiCode(err) != api.CodeLocked {
		t.Fatalf("locked device opened with the right password: %v", err)
	}
	if err := c.adm.Unlock(ctx, "alpha@example.org/laptop"); err != nil {
		t.Fatal(err)
	}
	p, err := client.Open(ctx, dir, []byte("right password"), nil)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	p.Close()
	// The successful open reset the counter: two free wrong attempts again.
	for i := 0; i < 2; i++ {
		if _, err := client.Open(ctx, dir, []byte("wrong password"), nil); !errors.As(err, &wp) {
			t.Fatalf("after reset %d: %v", i, err)
		}
	}
}

func throttleFast(free, lock int) throttle.Policy {
	return throttle.Policy{Free: free, LockAfter: lock, BaseDelay: 100 * time.Millisecond, MaxDelay: 400 * time.Millisecond}
}

func TestRevocationAndDisabling(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	if err := c.adm.RevokeDevice(ctx, "alpha@example.org/laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Whoami(ctx); apiCode(err) != api.CodeDeviceRevoked {
		t.Fatalf("revoked device's certificate: %v", err)
	}
	dir := p.Dir
	p.Close()
	if _, err := client.Open(ctx, dir, []byte("alpha password"), nil); apiCode(err) != api.CodeDeviceRevoked {
		t.Fatalf("revoked device unlock: %v", err)
	}
	q := c.enroll("bravo@example.org", "phone", "bravo password", keys.SuiteEC)
	defer q.Close()
	if err := c.adm.SetUserEnabled(ctx, "bravo@example.org", false); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Whoami(ctx); apiCode(err) != api.CodeAccountDisabled {
		t.Fatalf("disabled account: %v", err)
	}
	if err := c.adm.SetUserEnabled(ctx, "bravo@example.org", true); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Whoami(ctx); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}
}

// TestRenewalAndExpiry: an open in the last third of the certificate's
// lifetime renews it, and an expired certificate is refused.
//
// The waits are read from the certificates themselves (X.509 times are
// whole seconds, and the start is backdated), and the lifetime leaves an
// open several seconds to reach the renewal before the certificate
// expires, however loaded the machine.
func TestRenewalAndExpiry(t *testing.T) {
	// The open below must unlock (a password derivation) and renew within
	// the last third of the lifetime: 8 s, which a loaded machine needs.
	c := startCluster(t, func(cfg *server.Config) { cfg.CertValidity = 24 * time.Second })
	ctx := context.Background()
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	first := p.Cert
	dir := p.Dir
	p.Close()
	life := first.NotAfter.Sub(first.NotBefore)
	due := first.NotAfter.Add(-life / 3)
	time.Sleep(time.Until(due) + 200*time.Millisecond) // less than a third left
	start := time.Now()
	o := &client.Options{Log: slog.New(slog.NewTextHandler(logOnFailure(t), nil))}
	p, err := client.Open(ctx, dir, []byte("alpha password"), o)
	if err != nil {
		t.Fatalf("open %v before the certificate's end: %v", first.NotAfter.Sub(start), err)
	}
	if p.Cert.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("certificate not renewed at an open %v before its end, which took %v (lifetime %v)",
			first.NotAfter.Sub(start), time.Since(start), life)
	}
	w, err := p.Whoami(ctx)
	if err != nil || w.Serial != ca.Serial(p.Cert) {
		t.Fatalf("whoami after renewal: %+v %v", w, err)
	}
	p.Close()
	// The renewed certificate is on disk: a later open uses it.
	p, err = client.Open(ctx, dir, []byte("alpha password"), o)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(p.Cert.NotAfter) + 500*time.Millisecond)
	if _, err := p.Whoami(ctx); apiCode(err) != api.CodeCertExpired {
		t.Fatalf("expired certificate: %v", err)
	}
	p.Close()
}

// logOnFailure collects a client's log lines and prints them if the test
// fails.
func logOnFailure(t *testing.T) io.Writer {
	w := &lockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("client log:\n%s", w.String())
		}
	})
	return w
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// call makes one API request with an arbitrary client certificate.
func call(t *testing.T, c *cluster, cert tls.Certificate, method, path string, body any) *api.Error {
	t.Helper()
	caCert, _ := ca.ReadCert(filepath.Join(c.cfg.DataDir, ca.CACertFile))
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}}}}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "https://"+c.addr+path, rd)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == 200 {
		return nil
	}
	var eb api.ErrorBody
	json.NewDecoder(res.Body).Decode(&eb)
	return eb.Error
}

func TestForeignAndMismatchedCertificates(t *testing.T) {
	c := startCluster(t, nil)
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	defer p.Close()
	// A certificate for the same identity from another CA.
	otherDir := t.TempDir()
	other, err := ca.Init(otherDir, "example.org", nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k, _ := keys.Generate(keys.SuiteEC, 0)
	csr, _ := k.CSR(p.Device)
	pub, sig, _ := k.KexProof(p.Device)
	is, err := other.IssueDevice(csr, p.Device, pub, sig, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged := tls.Certificate{Certificate: [][]byte{is.Sign.Raw}, PrivateKey: k.Sign}
	if e := call(t, c, forged, "GET", api.PathMe, nil); e == nil || e.Code != api.CodeCertUnknownCA {
		t.Fatalf("foreign CA: %+v", e)
	}
	// No certificate at all.
	if e := call(t, c, tls.Certificate{}, "GET", api.PathMe, nil); e == nil || e.Code != api.CodeCertRequired {
		t.Fatalf("no certificate: %+v", e)
	}
	// The real device asks to renew a certificate for another identity.
	own := tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Keys.Sign}
	bravo := p.Device
	bravo.User = "bravo"
	csr2, _ := p.Keys.CSR(bravo)
	pub2, sig2, _ := p.Keys.KexProof(bravo)
	if e := call(t, c, own, "POST", api.PathRenew, api.Renew{CSR: csr2, KexPub: pub2, KexSig: sig2}); e == nil || e.Code != api.CodeIdentityMismatch {
		t.Fatalf("renew for another identity: %+v", e)
	}
	// A self-made certificate naming the device, signed by nobody we know.
	sk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "x"}, URIs: p.Cert.URIs, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &sk.PublicKey, sk)
	if e := call(t, c, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: sk}, "GET", api.PathMe, nil); e == nil || e.Code != api.CodeCertUnknownCA {
		t.Fatalf("self-signed: %+v", e)
	}
	if e := call(t, c, own, "GET", api.PathMe, nil); e != nil {
		t.Fatalf("own certificate refused: %+v", e)
	}
}

func TestActivationCodes(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	req := func(user, code string) client.EnrollRequest {
		return client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: user, Device: "d", Server: c.addr,
			CAFile: filepath.Join(c.cfg.DataDir, ca.CACertFile), Code: code, Password: []byte("a password")}
	}
	o := &client.Options{KDF: fastKDF}
	if _, err := client.Enroll(ctx, req("alpha@example.org", "AAAA-BBBB-CCCC-DDDD"), o); apiCode(err) != api.CodeCodeInvalid {
		t.Fatalf("wrong code: %v", err)
	}
	code := c.code("alpha@example.org")
	if _, err := client.Enroll(ctx, req("bravo@example.org", code), o); apiCode(err) != api.CodeCodeInvalid {
		t.Fatalf("another account's code: %v", err)
	}
	p, err := client.Enroll(ctx, req("alpha@example.org", strings.ToLower(code)), o)
	if err != nil {
		t.Fatalf("right code (lower case): %v", err)
	}
	p.Close()
	if _, err := client.Enroll(ctx, req("alpha@example.org", code), o); apiCode(err) != api.CodeCodeUsed {
		t.Fatalf("reused code: %v", err)
	}
	a, err := c.adm.AddUser(ctx, "carol@example.org", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := client.Enroll(ctx, req("carol@example.org", a.Code), o); apiCode(err) != api.CodeCodeExpired {
		t.Fatalf("expired code: %v", err)
	}
	// Racing enrollments with one code: exactly one wins.
	code = c.code("dave@example.org")
	const racers = 4
	errs := make(chan error, racers)
	for i := 0; i < racers; i++ {
		go func() {
			p, err := client.Enroll(ctx, req("dave@example.org", code), o)
			if err == nil {
				p.Close()
			}
			errs <- err
		}()
	}
	wins := 0
	for i := 0; i < racers; i++ {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case apiCode(err) == api.CodeCodeBusy || apiCode(err) == api.CodeCodeUsed:
		default:
			t.Errorf("racer: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d enrollments won the race for one code", wins)
	}
}

func TestTamperedProfile(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	if _, err := p.AddContact(ctx, "alpha@example.org"); err == nil {
		t.Fatal("added self as contact")
	}
	src := p.Dir
	p.Close()
	for _, tc := range []struct {
		name   string
		damage func(dir string)
	}{
		{"keystore byte flipped", flip(client.KeystoreFile, 0.5)},
		{"keystore truncated", truncate(client.KeystoreFile, 0.7)},
		{"kex keystore byte flipped", flip(client.KexFile, 0.6)},
		{"database byte flipped", flip(client.DBFile, 0.5)},
		{"database truncated", truncate(client.DBFile, 0.5)},
		{"database header flipped", flip(client.DBFile, 0.0)},
		{"profile garbage", func(dir string) { os.WriteFile(filepath.Join(dir, client.MetaFile), []byte("{\"version\":1,"), 0o600) }},
		{"ca replaced", func(dir string) {
			os.WriteFile(filepath.Join(dir, client.CAFile), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, src)
			tc.damage(dir)
			// Each damaged open spends an attempt the server cannot tell
			// from a wrong password; clear the counter between cases.
			if err := c.adm.Unlock(ctx, "alpha@example.org/laptop"); err != nil {
				t.Fatal(err)
			}
			_, err := client.Open(ctx, dir, []byte("alpha password"), nil)
			if !errors.Is(err, client.ErrTampered) {
				t.Fatalf("got %v, want ErrTampered", err)
			}
		})
	}
	// Undamaged copy still opens (the test damages copies only).
	c.adm.Unlock(ctx, "alpha@example.org/laptop")
	q, err := client.Open(ctx, copyDir(t, src), []byte("alpha password"), nil)
	if err != nil {
		t.Fatal(err)
	}
	q.Close()
}

// TestStolenProfileGivesNothingOffline plays a thief holding a copy of the
// profile directory and the right password, but not the server's per-device
// OPRF key: no file names the user or a contact in clear, and no key the
// thief can derive opens the keystore, so there is nothing to test password
// guesses against.
func TestStolenProfileGivesNothingOffline(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	p := c.enroll("alpha@example.org", "laptop", "alpha password", keys.SuiteEC)
	q := c.enroll("bravo@example.org", "phone", "bravo password", keys.SuiteEC)
	q.Close()
	if _, err := p.AddContact(ctx, "bravo@example.org"); err != nil {
		t.Fatal(err)
	}
	seed := p.Keys.Sign.(ed25519.PrivateKey).Seed()
	kexPriv := p.Keys.Kex.Bytes()
	dir := p.Dir
	p.Close()

	secrets := [][]byte{[]byte("alpha"), []byte("bravo"), []byte("laptop"), []byte("phone"), seed, kexPriv}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() == client.CAFile {
			continue // the CA certificate is public by design
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for _, s := range secrets {
			if bytes.Contains(data, s) {
				t.Errorf("%s contains %q in clear", e.Name(), s)
			}
		}
	}

	// With the right password, every key the thief can make without the
	// server's OPRF key fails: the OPRF output is a required input.
	meta, err := client.ParseMeta(mustRead(t, filepath.Join(dir, client.MetaFile)))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := kdf.Base([]byte("alpha password"), meta.KDF, meta.Salts.Scrypt)
	ks, _ := kdf.Secret(base, kdf.Keystore, meta.Salts.Keystore)
	guessKey, _ := kdf.NewOPRFKey() // the thief's best: some OPRF key
	y, _ := guessKey.FullEvaluate(ks)
	candidates := [][]byte{ks, base[:32]}
	for _, yy := range [][]byte{y, make([]byte, 64), nil} {
		k, _ := kdf.Final(yy, ks, kdf.Keystore)
		candidates = append(candidates, k)
	}
	p12 := mustRead(t, filepath.Join(dir, client.KeystoreFile))
	for _, k := range candidates {
		for _, pw := range []string{string(k), hexs(k)} {
			if _, _, err := pkcs12.Decode(p12, pw); err == nil {
				t.Fatal("keystore opened without the server's OPRF key")
			}
		}
	}

	// And online, the server is the only oracle: with the server gone, even
	// the right password opens nothing.
	c.shutdown()
	if _, err := client.Open(ctx, dir, []byte("alpha password"), nil); !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("open without the server: %v", err)
	}
}

func hexs(b []byte) string {
	const d = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, d[x>>4], d[x&15])
	}
	return string(out)
}

func mustRead(t *testing.T, path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyDir(t *testing.T, src string) string {
	dst := filepath.Join(t.TempDir(), "copy")
	os.MkdirAll(dst, 0o700)
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		os.WriteFile(filepath.Join(dst, e.Name()), mustRead(t, filepath.Join(src, e.Name())), 0o600)
	}
	return dst
}

func flip(name string, at float64) func(string) {
	return func(dir string) {
		path := filepath.Join(dir, name)
		b, _ := os.ReadFile(path)
		i := int(float64(len(b)-1) * at)
		if name == client.DBFile && at == 0 {
			i = 20 // inside the first page's encrypted part
		}
		b[i] ^= 0x40
		os.WriteFile(path, b, 0o600)
	}
}

func truncate(name string, keep float64) func(string) {
	return func(dir string) {
		path := filepath.Join(dir, name)
		b, _ := os.ReadFile(path)
		os.WriteFile(path, b[:int(float64(len(b))*keep)], 0o600)
	}
}

// A listening device renews its certificate while open and keeps receiving:
// the cluster accepts only the current certificate, so the SIP link is
// replaced with one presenting the new one.
func TestListenAcrossRenewal(t *testing.T) {
	c := startCluster(t, func(cfg *server.Config) { cfg.CertValidity = 20 * time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	bravo := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	if _, err := alpha.AddContact(ctx, "bravo@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := bravo.AddContact(ctx, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	aDir, aCert := alpha.Dir, alpha.Cert
	alpha.Close()
	first := bravo.Cert.SerialNumber
	got := make(chan client.Event, 16)
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	listening := time.Now()
	go func() { done <- bravo.Listen(lctx, func(e client.Event) { got <- e }) }()
	// The sender's certificate has the same short life: it is opened
	// (and so renewed) once less than a third of that life is left,
	// read from its own dates, while it is still valid however long the
	// enrolments above took.
	life := aCert.NotAfter.Sub(aCert.NotBefore)
	time.Sleep(time.Until(aCert.NotAfter.Add(-life/3)) + 200*time.Millisecond)
	a, err := client.Open(ctx, aDir, []byte("alpha password"), nil)
	if err != nil {
		t.Fatalf("open the sender %v before its certificate's end: %v", time.Until(aCert.NotAfter), err)
	}
	defer a.Close()
	// Past two thirds of its lifetime the listener's certificate is
	// renewed; the registration refresh 15 s into listening must then
	// succeed on the new link, so the message goes after it.
	time.Sleep(time.Until(listening.Add(17 * time.Second)))
	id, err := a.Send(ctx, "bravo@example.org", "after renewal")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case e := <-got:
			if e.Type == "warning" {
				t.Fatalf("listener: %s", e.Error)
			}
			if e.Type == "message" && e.ID == id {
				lcancel()
				<-done
				if bravo.Cert.SerialNumber.Cmp(first) == 0 {
					t.Fatal("the listening device did not renew")
				}
				bravo.Close()
				return
			}
		case <-deadline:
			t.Fatal("message not received after the listener's renewal")
		}
	}
}
