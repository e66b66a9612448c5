package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

const domain = "example.org"

// rig is a running proxy on loopback TLS over a real SQLite store, with
// a CA that certifies test devices as user@domain/device.
type rig struct {
	t     testing.TB
	p     *Proxy
	st    store.Store
	db    *sqlite.DB
	path  string // of db
	addr  string
	caKey *ecdsa.PrivateKey
	ca    *x509.Certificate
	pool  *x509.CertPool
}

// certAuth is the Authenticator of the tests: the TLS handshake verified
// the certificate against the test CA; the subject names the device, whose
// state is read from the store like the node does.
type certAuth struct{ st store.Store }

func (a certAuth) Certificate(ctx context.Context, cert *x509.Certificate) (Identity, error) {
	d, err := ident.ParseDevice(cert.Subject.CommonName)
	if err != nil {
		return Identity{}, &Refusal{Status: 403, Reason: "Forbidden: bad subject"}
	}
	dev, err := a.st.DeviceByName(ctx, d.Account.String(), d.Name)
	if err != nil {
		return Identity{}, err
	}
	if dev.Status != store.StatusActive {
		return Identity{}, &Refusal{Status: 403, Reason: "Forbidden: device revoked"}
	}
	return Identity{AccountID: dev.AccountID, DeviceID: dev.ID, Account: d.Account.String(), Device: d.Name}, nil
}

func (a certAuth) SIPCredential(ctx context.Context, username string) (Identity, []byte, error) {
	return Identity{}, nil, &Refusal{Status: 403, Reason: "Forbidden"}
}

func (a certAuth) SIPAttempt(context.Context, int64) error  { return nil }
func (a certAuth) SIPVerified(context.Context, int64) error { return nil }

// faulty lets a test make store calls fail.
type faulty struct {
	store.Store
	mu   sync.Mutex
	fail map[string]error
}

func (f *faulty) err(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail[op]
}

func (f *faulty) set(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail == nil {
		f.fail = map[string]error{}
	}
	f.fail[op] = err
}

func (f *faulty) HasContact(ctx context.Context, owner, contact string) (bool, error) {
	if err := f.err("HasContact"); err != nil {
		return false, err
	}
	return f.Store.HasContact(ctx, owner, contact)
}

func (f *faulty) EnqueueMessage(ctx context.Context, m store.Message, ts []store.Target, quota int64) (int64, error) {
	if err := f.err("EnqueueMessage"); err != nil {
		return 0, err
	}
	return f.Store.EnqueueMessage(ctx, m, ts, quota)
}

func (f *faulty) Account(ctx context.Context, name string) (store.Account, error) {
	if err := f.err("Account"); err != nil {
		return store.Account{}, err
	}
	return f.Store.Account(ctx, name)
}

func (f *faulty) Devices(ctx context.Context, accountID int64) ([]store.Device, error) {
	if err := f.err("Devices"); err != nil {
		return nil, err
	}
	return f.Store.Devices(ctx, accountID)
}

// ActiveDevices fails with the "Devices" fault: both are the device lookup.
func (f *faulty) ActiveDevices(ctx context.Context, accountID int64) ([]store.DeviceRef, error) {
	if err := f.err("Devices"); err != nil {
		return nil, err
	}
	return f.Store.ActiveDevices(ctx, accountID)
}

var errDisk = errors.New("disk I/O error")

func newRig(t testing.TB, tweak func(*Config)) (*rig, *faulty) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "p.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fs := &faulty{Store: db}
	r := &rig{t: t, st: fs, db: db, path: path}
	r.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &r.caKey.PublicKey, r.caKey)
	if err != nil {
		t.Fatal(err)
	}
	r.ca, _ = x509.ParseCertificate(der)
	r.pool = x509.NewCertPool()
	r.pool.AddCert(r.ca)
	srvCert := r.issue("server", []net.IP{net.ParseIP("127.0.0.1")})
	cfg := Config{Domain: domain, Store: fs, Auth: certAuth{fs}, NonceKey: []byte("k"), Log: slog.New(slog.DiscardHandler),
		TLS: &tls.Config{Certificates: []tls.Certificate{srvCert}, ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: r.pool, MinVersion: tls.VersionTLS12}}
	if tweak != nil {
		tweak(&cfg)
	}
	if r.p, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	r.p.sweepEvery = 100 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.p.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	// Tests (the fuzz targets) call handlers directly, which read what
	// Serve sets up on its goroutine.
	<-r.p.serving
	return r, fs
}

func (r *rig) issue(cn string, ips []net.IP) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: ips, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, r.ca, &key.PublicKey, r.caKey)
	if err != nil {
		r.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// account makes an active account with the named devices (suite "sip" for
// a name starting with "phone").
func (r *rig) account(name string, devices ...string) store.Account {
	r.t.Helper()
	ctx := context.Background()
	a, err := r.db.CreateAccount(ctx, name+"@"+domain, time.Now())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.db.SetAccountStatus(ctx, a.Name, store.StatusActive); err != nil {
		r.t.Fatal(err)
	}
	a.Status = store.StatusActive
	for _, d := range devices {
		suite := "ec"
		if strings.HasPrefix(d, "phone") {
			suite = "sip"
		}
		if _, err := r.db.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: d, Handle: a.Name + "/" + d, Suite: suite, Serial: "01",
			Cert: []byte{1}, NotAfter: time.Now().Add(time.Hour), SealedOPRF: []byte{1}, Created: time.Now()}); err != nil {
			r.t.Fatal(err)
		}
	}
	return a
}

func (r *rig) contact(owner, contact string) {
	r.t.Helper()
	a, err := r.db.Account(context.Background(), owner+"@"+domain)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.db.AddContact(context.Background(), a.ID, contact+"@"+domain, time.Now()); err != nil {
		r.t.Fatal(err)
	}
}

// friends lists each account in the other's contacts.
func (r *rig) friends(a, b string) {
	r.contact(a, b)
	r.contact(b, a)
}

func (r *rig) deviceID(account, name string) int64 {
	d, err := r.db.DeviceByName(context.Background(), account+"@"+domain, name)
	if err != nil {
		r.t.Fatal(err)
	}
	return d.ID
}

// got is one MESSAGE a test device received.
type got struct {
	from string
	body string
	at   time.Time
}

// dev is a test device: a SIP UA over TLS with its own certificate, which
// answers delivered MESSAGEs with what answer says.
type dev struct {
	r       *rig
	account string
	name    string
	ua      *sipgo.UserAgent
	cli     *sipgo.Client

	mu     sync.Mutex
	inbox  []got
	answer func(body string) int
	delay  time.Duration
}

func (r *rig) dev(account, name string) *dev {
	r.t.Helper()
	cert := r.issue(account+"@"+domain+"/"+name, nil)
	tc := &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname(domain), sipgo.WithUserAgenTLSConfig(tc))
	if err != nil {
		r.t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet))
	if err != nil {
		r.t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		r.t.Fatal(err)
	}
	d := &dev{r: r, account: account, name: name, ua: ua, cli: cli}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		d.mu.Lock()
		answer, delay := d.answer, d.delay
		d.mu.Unlock()
		time.Sleep(delay)
		code := 200
		if answer != nil {
			code = answer(string(req.Body()))
		}
		if code == 200 {
			d.mu.Lock()
			d.inbox = append(d.inbox, got{from: req.From().Address.User, body: string(req.Body()), at: time.Now()})
			d.mu.Unlock()
		}
		tx.Respond(sip.NewResponseFromRequest(req, code, "test", nil))
	})
	r.t.Cleanup(func() { ua.Close() })
	return d
}

func (d *dev) uri(account string) sip.Uri {
	return sip.Uri{Scheme: "sip", User: account, Host: domain}
}

func (d *dev) do(req *sip.Request) *sip.Response {
	d.r.t.Helper()
	req.SetTransport("TLS")
	req.SetDestination(d.r.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := d.cli.Do(ctx, req)
	if err != nil {
		d.r.t.Fatalf("%s/%s %s: %v", d.account, d.name, req.Method, err)
	}
	return res
}

func (d *dev) register(expires int) *sip.Response {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	from := &sip.FromHeader{Address: d.uri(d.account), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: d.uri(d.account), Params: sip.NewParams()})
	c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.account, Host: domain, UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	c.Address.UriParams.Add("transport", "tls")
	req.AppendHeader(c)
	req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	return d.do(req)
}

// send sends a MESSAGE as fromUser (normally the device's own account).
func (d *dev) sendAs(fromUser, to, ctype string, body []byte) *sip.Response {
	req := sip.NewRequest(sip.MESSAGE, d.uri(to))
	from := &sip.FromHeader{Address: d.uri(fromUser), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: d.uri(to), Params: sip.NewParams()})
	ct := sip.ContentTypeHeader(ctype)
	req.AppendHeader(&ct)
	req.SetBody(body)
	return d.do(req)
}

func (d *dev) send(to, body string) *sip.Response {
	return d.sendAs(d.account, to, EnvelopeType, []byte(body))
}

func (d *dev) received() []got {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]got(nil), d.inbox...)
}

func (d *dev) bodies() []string {
	var out []string
	for _, g := range d.received() {
		out = append(out, g.body)
	}
	return out
}

func waitUntil(t testing.TB, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) stored(account string) int64 {
	a, err := r.db.Account(context.Background(), account+"@"+domain)
	if err != nil {
		r.t.Fatal(err)
	}
	n, err := r.db.StoredBytes(context.Background(), a.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	return n
}
