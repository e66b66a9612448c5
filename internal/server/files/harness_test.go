package files_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/files"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

const domain = "example.org"

// env is a file service on real HTTPS on loopback, with mutual TLS: each
// test device has its own client certificate, and the service's caller is
// the device the certificate names. Accounts: alpha (a1, a2) and bravo
// (b1, b2) are each other's contacts; charlie (c1) has alpha on its list,
// but alpha has not added charlie.
type env struct {
	t       testing.TB
	st      *sqlite.DB
	svc     *files.Service
	blobDir string
	srv     *httptest.Server
	clients map[string]*http.Client
	logs    *lockedBuffer // the service's log, at debug level

	mu  sync.Mutex
	now time.Time
}

func newEnv(t testing.TB, lim files.Limits, wrap func(files.FileStore) files.FileStore, tweaks ...func(*httptest.Server)) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, st: st, blobDir: filepath.Join(dir, "files"), clients: map[string]*http.Client{}, now: time.Unix(1_800_000_000, 0)}
	fs, err := files.NewFSStore(e.blobDir)
	if err != nil {
		t.Fatal(err)
	}
	var bs files.FileStore = fs
	if wrap != nil {
		bs = wrap(fs)
	}
	e.logs = &lockedBuffer{}
	e.svc = files.New(st, bs, lim, domain, slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	e.svc.SetClock(func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now })

	now := time.Now()
	for user, devs := range map[string][]string{"alpha": {"a1", "a2"}, "bravo": {"b1", "b2"}, "charlie": {"c1"}} {
		name := user + "@" + domain
		a, err := st.CreateAccount(ctx, name, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetAccountStatus(ctx, name, store.StatusActive); err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if _, err := st.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: d, Handle: "h-" + d, Suite: "ec", Serial: d,
				Cert: []byte{1}, SealedOPRF: []byte{1}, NotAfter: now.Add(time.Hour), Status: store.StatusActive, Created: now}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, c := range [][2]string{{"alpha", "bravo"}, {"bravo", "alpha"}, {"charlie", "alpha"}} {
		a, _ := st.Account(ctx, c[0]+"@"+domain)
		if err := st.AddContact(ctx, a.ID, c[1]+"@"+domain, now); err != nil {
			t.Fatal(err)
		}
	}

	m := http.NewServeMux()
	e.svc.Routes(m, func(r *http.Request) (files.Caller, error) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return files.Caller{}, &api.Error{Status: 401, Code: api.CodeCertRequired, Message: "certificate needed"}
		}
		id, err := ident.ParseDevice(r.TLS.PeerCertificates[0].Subject.CommonName)
		if err != nil {
			return files.Caller{}, &api.Error{Status: 401, Code: api.CodeCertUnknown, Message: err.Error()}
		}
		d, err := st.DeviceByName(r.Context(), id.Account.String(), id.Name)
		if err != nil {
			return files.Caller{}, &api.Error{Status: 401, Code: api.CodeCertUnknown, Message: err.Error()}
		}
		return files.Caller{AccountID: d.AccountID, Account: id.Account.String(), DeviceID: d.ID, Device: d.Name}, nil
	})
	e.srv = httptest.NewUnstartedServer(m)
	e.srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert, MinVersion: tls.VersionTLS13}
	// Handshakes cut by the test's own shutdown are no finding.
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	for _, f := range tweaks {
		f(e.srv)
	}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	for _, d := range []string{"alpha@example.org/a1", "alpha@example.org/a2", "bravo@example.org/b1", "bravo@example.org/b2", "charlie@example.org/c1"} {
		tr := e.srv.Client().Transport.(*http.Transport).Clone()
		tr.TLSClientConfig.Certificates = []tls.Certificate{clientCert(t, d)}
		e.clients[d[len(d)-2:]] = &http.Client{Transport: tr, Timeout: time.Minute}
	}
	return e
}

func clientCert(t testing.TB, cn string) tls.Certificate {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// reply is one answer of the service.
type reply struct {
	status int
	header http.Header
	body   []byte
	err    *api.Error
}

func (e *env) do(dev, method, path string, body io.Reader, hdr map[string]string) reply {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := e.clients[dev].Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	out := reply{status: res.StatusCode, header: res.Header, body: data}
	if res.StatusCode/100 != 2 && method != http.MethodHead {
		var eb api.ErrorBody
		if err := json.Unmarshal(data, &eb); err != nil || eb.Error == nil {
			e.t.Fatalf("%s %s: %s without an error body: %q", method, path, res.Status, data)
		}
		out.err = eb.Error
	}
	return out
}

// call sends JSON and decodes the answer into v when it is a success.
func (e *env) call(dev, method, path string, in, v any) *api.Error {
	e.t.Helper()
	b, _ := json.Marshal(in)
	r := e.do(dev, method, path, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
	if r.err != nil {
		return r.err
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			e.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return nil
}

func (e *env) must(err *api.Error, what string) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %s: %s", what, err.Code, err.Message)
	}
}

func (e *env) wantCode(err *api.Error, code, what string) {
	e.t.Helper()
	if err == nil || err.Code != code {
		e.t.Fatalf("%s: got %+v, want %s", what, err, code)
	}
}

// slotSecrets are what a recipient device keeps of its slots: slot id ->
// nonce1.
type slotSecrets map[string][]byte

// newSlotID is a fresh slot id as the wire spells it.
func newSlotID() string { return hex.EncodeToString(random(api.SlotIDSize)) }

// proofFor is the sender's proof of having opened a slot with nonce1
// (filecrypt.ProveSlot).
func proofFor(id string, nonce1 []byte) []byte {
	var sid filecrypt.SlotID
	hex.Decode(sid[:], []byte(id))
	return filecrypt.ProveSlot(sid, nonce1)
}

// offer is a slot as a recipient device uploads it: the sealed blob is
// random (it is opaque to the node), the proof hash and nonce2 are real.
func offer(id string, nonce1 []byte) api.FileSlot {
	var sid filecrypt.SlotID
	hex.Decode(sid[:], []byte(id))
	h := filecrypt.SlotProofHash(sid, proofFor(id, nonce1))
	return api.FileSlot{ID: id, Sealed: random(1200), ProofHash: h[:], Nonce2: random(api.Nonce2Size)}
}

// putSlots uploads n slots of dev for contact and keeps their nonce1.
func (e *env) putSlots(dev, contact string, n int) slotSecrets {
	e.t.Helper()
	sec := slotSecrets{}
	req := api.FileSlotsPut{Contact: contact}
	for range n {
		id, nonce1 := newSlotID(), random(32)
		sec[id] = nonce1
		req.Slots = append(req.Slots, offer(id, nonce1))
	}
	e.must(e.call(dev, "PUT", api.PathFileSlots, req, nil), "put slots")
	return sec
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// takeAndProve does both steps of taking slots of recipient for the
// sender device; nonce1 is looked up in the recipients' secrets (in real
// use the sender opens it from the sealed blob).
func (e *env) takeAndProve(sender, recipient string, secrets map[string]slotSecrets) []api.FileSlotUse {
	e.t.Helper()
	var taken api.FileSlotTaken
	e.must(e.call(sender, "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: recipient}, &taken), "take")
	var uses []api.FileSlotUse
	for _, s := range taken.Slots {
		var p api.FileSlotProven
		e.must(e.call(sender, "POST", api.PathFileSlotProve, api.FileSlotProve{Device: s.Device, SlotID: s.SlotID, Proof: proofFor(s.SlotID, secrets[s.Device][s.SlotID])}, &p), "prove")
		uses = append(uses, api.FileSlotUse{Device: s.Device, SlotID: s.SlotID, Nonce2: p.Nonce2})
	}
	return uses
}

func (e *env) create(sender, recipient string, size int64, uses []api.FileSlotUse) (api.FileCreated, *api.Error) {
	e.t.Helper()
	var fc api.FileCreated
	err := e.call(sender, "POST", api.PathFiles, api.FileCreate{Recipient: recipient, Size: size, Header: []byte("opaque header"), Slots: uses}, &fc)
	return fc, err
}

func (e *env) patch(dev, id string, off int64, chunk []byte) reply {
	e.t.Helper()
	return e.do(dev, "PATCH", api.PathFiles+"/"+id, bytes.NewReader(chunk),
		map[string]string{"Content-Type": api.ContentTypeOffset, api.HeaderUploadOffset: fmt.Sprint(off)})
}

func (e *env) offset(dev, id string) string {
	e.t.Helper()
	r := e.do(dev, "HEAD", api.PathFiles+"/"+id, nil, nil)
	if r.status != 200 {
		e.t.Fatalf("HEAD %s: %d", id, r.status)
	}
	return r.header.Get(api.HeaderUploadOffset)
}

// stored lists the data directory of the file store.
func (e *env) stored() []string {
	e.t.Helper()
	ents, err := os.ReadDir(e.blobDir)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, x := range ents {
		out = append(out, x.Name())
	}
	sort.Strings(out)
	return out
}

const (
	alpha   = "alpha@example.org"
	bravo   = "bravo@example.org"
	charlie = "charlie@example.org"
	b1      = "bravo@example.org/b1"
	b2      = "bravo@example.org/b2"
)

// lockedBuffer collects log output from concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
