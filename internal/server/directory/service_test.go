package directory_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/e164"
	"github.com/phonex/phonex/internal/server/directory"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

// harness runs the service on a real store behind an HTTP server whose
// caller is named by a header; the node's mutual TLS in front of it is
// tested end to end in internal/e2e.
type harness struct {
	t       testing.TB
	st      *sqlite.DB
	dbPath  string
	svc     *directory.Service
	srv     *httptest.Server
	logs    *bytes.Buffer
	mu      sync.Mutex
	now     time.Time
	callers map[string]directory.Caller
}

const callerHeader = "X-Test-Device"

func newHarness(t testing.TB, lim directory.Limits) *harness {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "phonexd.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &harness{t: t, st: st, dbPath: path, logs: &bytes.Buffer{}, now: time.Unix(1_800_000_000, 0), callers: map[string]directory.Caller{}}
	log := slog.New(slog.NewTextHandler(lockedWriter{h}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.svc = directory.New(st, lim, "example.org", log)
	h.svc.SetClock(func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now })
	m := http.NewServeMux()
	h.svc.Routes(m, func(r *http.Request) (directory.Caller, error) {
		c, ok := h.callers[r.Header.Get(callerHeader)]
		if !ok {
			return c, &api.Error{Status: 401, Code: api.CodeCertRequired, Message: "no caller"}
		}
		return c, nil
	})
	h.srv = httptest.NewServer(m)
	t.Cleanup(h.srv.Close)
	return h
}

type lockedWriter struct{ h *harness }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.h.logs.Write(p)
}

func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

// device enrolls user/dev (user@example.org) with a random certificate.
func (h *harness) device(user, dev string) directory.Caller {
	h.t.Helper()
	ctx := context.Background()
	name := user + "@example.org"
	a, err := h.st.Account(ctx, name)
	if err != nil {
		if a, err = h.st.CreateAccount(ctx, name, h.now); err != nil {
			h.t.Fatal(err)
		}
	}
	cert := make([]byte, 64)
	rand.Read(cert)
	d, err := h.st.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: dev, Handle: user + "-" + dev, Suite: "ec", Serial: hex.EncodeToString(cert[:8]),
		Cert: cert, SealedOPRF: []byte{1}, NotAfter: h.now.Add(time.Hour * 24 * 365), Status: store.StatusActive, Created: h.now})
	if err != nil {
		h.t.Fatal(err)
	}
	c := directory.Caller{AccountID: a.ID, Account: name, DeviceID: d.ID, Device: dev}
	h.callers[user+"/"+dev] = c
	return c
}

// call sends a request as dev; a non-2xx answer comes back as *api.Error.
func (h *harness) call(dev, method, path string, req, resp any) error {
	h.t.Helper()
	var body bytes.Buffer
	if req != nil {
		json.NewEncoder(&body).Encode(req)
	}
	r, _ := http.NewRequest(method, h.srv.URL+path, &body)
	r.Header.Set(callerHeader, dev)
	res, err := h.srv.Client().Do(r)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode/100 != 2 {
		var eb api.ErrorBody
		if err := json.NewDecoder(res.Body).Decode(&eb); err != nil || eb.Error == nil {
			h.t.Fatalf("%s %s: %s without an error body", method, path, res.Status)
		}
		eb.Error.Status = res.StatusCode
		return eb.Error
	}
	if resp != nil {
		return json.NewDecoder(res.Body).Decode(resp)
	}
	return nil
}

func wantCode(t testing.TB, what string, err error, code string) {
	t.Helper()
	if ae, ok := err.(*api.Error); !ok || ae.Code != code {
		t.Fatalf("%s: %v, want code %s", what, err, code)
	}
}

func (h *harness) begin(dev, number string) api.DirClaimBegun {
	h.t.Helper()
	var b api.DirClaimBegun
	if err := h.call(dev, "POST", api.PathDirClaims, api.DirClaimBegin{Number: number}, &b); err != nil {
		h.t.Fatalf("begin %s as %s: %v", number, dev, err)
	}
	return b
}

func (h *harness) notices(dev, ref string) []api.DirNotice {
	h.t.Helper()
	var ns api.DirNotices
	path := api.PathDirNotices
	if ref != "" {
		path += "?ref=" + ref
	}
	if err := h.call(dev, "GET", path, nil, &ns); err != nil {
		h.t.Fatal(err)
	}
	return ns.Notices
}

func (h *harness) prove(dev, claim, code string) (api.DirPublication, error) {
	var p api.DirPublication
	err := h.call(dev, "POST", api.PathDirClaims+"/"+claim, api.DirClaimProve{Code: code}, &p)
	return p, err
}

// publish claims number as dev with the code it receives.
func (h *harness) publish(dev, number string) api.DirPublication {
	h.t.Helper()
	b := h.begin(dev, number)
	ns := h.notices(dev, b.Claim)
	if len(ns) != 1 || ns[0].Kind != store.DirNoticeCode {
		h.t.Fatalf("notices of %s: %+v", dev, ns)
	}
	p, err := h.prove(dev, b.Claim, ns[0].Code)
	if err != nil {
		h.t.Fatalf("prove %s: %v", number, err)
	}
	return p
}

func (h *harness) lookup(dev string, q api.DirLookup) (api.DirEntries, error) {
	var out api.DirEntries
	err := h.call(dev, "POST", api.PathDirLookup, q, &out)
	return out, err
}

func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestClaimAndPublish(t *testing.T) {
	h := newHarness(t, directory.DefaultLimits)
	a1 := h.device("alpha", "a1")
	h.device("alpha", "a2")
	const num = "+420123456789"
	b := h.begin("alpha/a1", num)
	if b.Devices != 2 || b.Number != num {
		t.Fatalf("begin: %+v", b)
	}
	// The code reaches every device of the account, once.
	n1, n2 := h.notices("alpha/a1", ""), h.notices("alpha/a2", "")
	if len(n1) != 1 || len(n2) != 1 || n1[0].Code != n2[0].Code || len(n1[0].Code) != 8 || n1[0].FromDevice != "a1" || n1[0].Ref != b.Claim {
		t.Fatalf("notices: %+v %+v", n1, n2)
	}
	if again := h.notices("alpha/a1", ""); len(again) != 0 {
		t.Fatalf("notices handed out twice: %+v", again)
	}
	// Only the device that asked may answer.
	_, err := h.prove("alpha/a2", b.Claim, n1[0].Code)
	wantCode(t, "answer from another device", err, api.CodeClaimUnknown)
	_, err = h.prove("alpha/a1", b.Claim, wrong(n1[0].Code))
	wantCode(t, "wrong code", err, api.CodeCodeInvalid)
	p, err := h.prove("alpha/a1", b.Claim, n1[0].Code)
	if err != nil {
		t.Fatal(err)
	}
	if p.State != api.DirPublished || p.Entry.AOR != a1.Account || len(p.Entry.Keys) != 2 {
		t.Fatalf("publication: %+v", p)
	}
	// Single use.
	_, err = h.prove("alpha/a1", b.Claim, n1[0].Code)
	wantCode(t, "second answer", err, api.CodeClaimUnknown)

	for _, q := range []api.DirLookup{{Number: num}, {AOR: "alpha@example.org"}, {AOR: "Alpha@Example.org"}} {
		got, err := h.lookup("alpha/a2", q)
		if err != nil || len(got.Entries) != 1 || got.Entries[0].Number != num || got.Entries[0].AOR != "alpha@example.org" || len(got.Entries[0].Keys) != 2 {
			t.Fatalf("lookup %+v: %+v %v", q, got, err)
		}
	}
	_, err = h.lookup("alpha/a1", api.DirLookup{Number: "+420123456780"})
	wantCode(t, "unpublished number", err, api.CodeNotFound)

	// One number, one account.
	h.device("bravo", "b1")
	err = h.call("bravo/b1", "POST", api.PathDirClaims, api.DirClaimBegin{Number: num}, nil)
	wantCode(t, "claim of another account's number", err, api.CodeNumberTaken)
}

func TestClaimLimits(t *testing.T) {
	lim := directory.DefaultLimits
	lim.MaxAttempts, lim.MaxOpen = 3, 2
	h := newHarness(t, lim)
	h.device("alpha", "a1")
	b := h.begin("alpha/a1", "+15550100199")
	code := h.notices("alpha/a1", b.Claim)[0].Code
	for i := 0; i < 2; i++ {
		_, err := h.prove("alpha/a1", b.Claim, wrong(code))
		wantCode(t, "wrong code", err, api.CodeCodeInvalid)
	}
	_, err := h.prove("alpha/a1", b.Claim, wrong(code))
	wantCode(t, "last wrong code", err, api.CodeClaimLocked)
	_, err = h.prove("alpha/a1", b.Claim, code)
	wantCode(t, "right code after the lock", err, api.CodeClaimUnknown)

	// Expiry.
	b = h.begin("alpha/a1", "+15550100199")
	code = h.notices("alpha/a1", b.Claim)[0].Code
	h.advance(lim.ClaimTTL)
	_, err = h.prove("alpha/a1", b.Claim, code)
	wantCode(t, "expired claim", err, api.CodeClaimUnknown)

	// Claims in progress per account.
	h.begin("alpha/a1", "+15550100198")
	h.begin("alpha/a1", "+15550100197")
	err = h.call("alpha/a1", "POST", api.PathDirClaims, api.DirClaimBegin{Number: "+15550100196"}, nil)
	wantCode(t, "third open claim", err, api.CodeBusy)
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, directory.DefaultLimits)
	h.device("alpha", "a1")
	for _, tc := range []struct {
		path string
		body string
	}{
		{api.PathDirClaims, `{"number":"420123456789"}`},
		{api.PathDirClaims, `{"number":"+4201"}`},
		{api.PathDirClaims, `{"number":"+420 123 456 789"}`},
		{api.PathDirClaims, `{"number":"+420123456789","x":1}`},
		{api.PathDirClaims, `{"number":"+420123456789"} {}`},
		{api.PathDirClaims + "/X", `{"code":"12345"}`},
		{api.PathDirClaims + "/X", `{"code":"1234567a"}`},
		{api.PathDirLookup, `{}`},
		{api.PathDirLookup, `{"number":"+420123456789","aor":"a@example.org"}`},
		{api.PathDirLookup, `{"aor":"nobody"}`},
		{api.PathDirDiscover, `{"hashes":[]}`},
		{api.PathDirDiscover, `{"hashes":["AAAA"]}`},
		{api.PathDirDiscover, `not json`},
	} {
		r, _ := http.NewRequest("POST", h.srv.URL+tc.path, strings.NewReader(tc.body))
		r.Header.Set(callerHeader, "alpha/a1")
		res, err := h.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 400 {
			t.Errorf("POST %s %s: %s, want 400", tc.path, tc.body, res.Status)
		}
	}
}

func TestReplacement(t *testing.T) {
	lim := directory.DefaultLimits
	lim.ReplaceDelay = time.Hour
	h := newHarness(t, lim)
	h.device("alpha", "phone")
	const num = "+447700900123"
	first := h.publish("alpha/phone", num)
	if first.State != api.DirPublished || len(first.Entry.Keys) != 1 {
		t.Fatalf("first publication: %+v", first)
	}
	// The phone is lost; a new device logs in and publishes.
	h.device("alpha", "laptop")
	p := h.publish("alpha/laptop", num)
	if p.State != api.DirReplacementPending || p.Entry.Pending == nil || !p.Entry.Pending.Effective.Equal(h.now.Add(time.Hour)) {
		t.Fatalf("replacement: %+v", p)
	}
	ns := h.notices("alpha/phone", "")
	if len(ns) != 1 || ns[0].Kind != store.DirNoticeReplacement || ns[0].FromDevice != "laptop" || ns[0].Ref != p.Entry.Pending.Replacement {
		t.Fatalf("notice to the old device: %+v", ns)
	}
	got, _ := h.lookup("alpha/phone", api.DirLookup{Number: num})
	if len(got.Entries[0].Keys) != 1 || got.Entries[0].Keys[0].Device != "phone" || got.Entries[0].Pending == nil {
		t.Fatalf("lookup during the delay: %+v", got)
	}
	// A device whose key is not published cannot cancel; the published one can.
	h.device("alpha", "tablet")
	err := h.call("alpha/tablet", "DELETE", api.PathDirReplacements+"/"+p.Entry.Pending.Replacement, nil, nil)
	wantCode(t, "cancel from an unpublished device", err, api.CodeNotAllowed)
	h.device("bravo", "b1")
	err = h.call("bravo/b1", "DELETE", api.PathDirReplacements+"/"+p.Entry.Pending.Replacement, nil, nil)
	wantCode(t, "cancel from another account", err, api.CodeNotFound)
	if err := h.call("alpha/phone", "DELETE", api.PathDirReplacements+"/"+p.Entry.Pending.Replacement, nil, nil); err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Hour)
	got, _ = h.lookup("alpha/phone", api.DirLookup{Number: num})
	if len(got.Entries[0].Keys) != 1 || got.Entries[0].Pending != nil {
		t.Fatalf("lookup after a cancelled replacement: %+v", got)
	}

	// Again, not cancelled: the keys switch after the delay.
	p = h.publish("alpha/laptop", num)
	h.advance(59 * time.Minute)
	got, _ = h.lookup("alpha/laptop", api.DirLookup{Number: num})
	if len(got.Entries[0].Keys) != 1 {
		t.Fatalf("before the delay: %+v", got)
	}
	h.advance(time.Minute)
	got, _ = h.lookup("alpha/laptop", api.DirLookup{Number: num})
	// The lost phone's key is discarded.
	if ks := got.Entries[0].Keys; len(ks) != 2 || ks[0].Device != "laptop" || ks[1].Device != "tablet" || got.Entries[0].Pending != nil {
		t.Fatalf("after the delay: %+v", got)
	}
	// A device now published republishes at once.
	if p := h.publish("alpha/laptop", num); p.State != api.DirPublished {
		t.Fatalf("republication: %+v", p)
	}
}

func TestQueryBudget(t *testing.T) {
	lim := directory.DefaultLimits
	lim.QueryBudget, lim.QueryWindow = 5, time.Minute
	h := newHarness(t, lim)
	h.device("alpha", "a1")
	h.device("alpha", "a2")
	h.publish("alpha/a1", "+420123456789")
	for i := 0; i < 3; i++ {
		if _, err := h.lookup("alpha/a1", api.DirLookup{Number: "+420123456789"}); err != nil {
			t.Fatal(err)
		}
	}
	var d api.DirDiscovered
	hashes := [][]byte{e164.Hash("+420123456789"), e164.Hash("+420123456788")}
	if err := h.call("alpha/a1", "POST", api.PathDirDiscover, api.DirDiscover{Hashes: hashes}, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Matches) != 1 || d.Matches[0].Number != "+420123456789" || !bytes.Equal(d.Matches[0].Hash, hashes[0]) {
		t.Fatalf("discovery: %+v", d)
	}
	_, err := h.lookup("alpha/a1", api.DirLookup{Number: "+420123456789"})
	wantCode(t, "beyond the budget", err, api.CodeThrottled)
	if err.(*api.Error).RetryAfter < 1 {
		t.Errorf("no Retry-After: %+v", err)
	}
	// The budget is the device's; another device has its own.
	if _, err := h.lookup("alpha/a2", api.DirLookup{Number: "+420123456789"}); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Minute)
	if _, err := h.lookup("alpha/a1", api.DirLookup{Number: "+420123456789"}); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// No query is logged or stored: after lookups and discoveries of numbers
// the directory does not hold, neither the log nor any table nor the
// database files contain those numbers or their hashes in any encoding.
func TestQueriesLeaveNoTrace(t *testing.T) {
	h := newHarness(t, directory.DefaultLimits)
	h.device("alpha", "a1")
	h.publish("alpha/a1", "+420123456789")
	secret := []string{"+31612345678", "+4915112345678", "+33612345678"}
	for _, n := range secret {
		_, err := h.lookup("alpha/a1", api.DirLookup{Number: n})
		wantCode(t, "lookup", err, api.CodeNotFound)
	}
	_, err := h.lookup("alpha/a1", api.DirLookup{AOR: "zulu@example.org"})
	wantCode(t, "lookup", err, api.CodeNotFound)
	var hashes [][]byte
	for _, n := range secret {
		hashes = append(hashes, e164.Hash(n))
	}
	hashes = append(hashes, e164.Hash("+420123456789"))
	var d api.DirDiscovered
	if err := h.call("alpha/a1", "POST", api.PathDirDiscover, api.DirDiscover{Hashes: hashes}, &d); err != nil || len(d.Matches) != 1 {
		t.Fatalf("discovery: %+v %v", d, err)
	}
	// Bad requests carrying numbers leave nothing either.
	h.call("alpha/a1", "POST", api.PathDirLookup, api.DirLookup{Number: secret[0], AOR: "zulu@example.org"}, nil)

	var needles [][]byte
	for i, n := range secret {
		needles = append(needles, []byte(n), []byte(n[1:]), hashes[i], []byte(hex.EncodeToString(hashes[i])),
			[]byte(base64.StdEncoding.EncodeToString(hashes[i])), []byte(e164.ENUMDomain(n, "e164.arpa")))
	}
	needles = append(needles, []byte("zulu"))
	h.mu.Lock()
	logs := h.logs.Bytes()
	h.mu.Unlock()
	// Every table's every row, as text.
	db, err := sql.Open("sqlite", "file:"+h.dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var dump bytes.Buffer
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type='table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	if len(names) < 10 {
		t.Fatalf("tables: %v", names)
	}
	for _, tbl := range names {
		rows, err := db.Query(`SELECT * FROM "` + tbl + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					dump.Write(b)
				} else {
					fmt.Fprint(&dump, v)
				}
				dump.WriteByte(0)
			}
		}
		rows.Close()
	}
	files := map[string][]byte{"log": logs, "tables": dump.Bytes()}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(h.dbPath + suffix)
		if err == nil {
			files["file"+suffix] = b
		}
	}
	if !bytes.Contains(dump.Bytes(), []byte("+420123456789")) {
		t.Fatal("the dump misses the published number: the check would prove nothing")
	}
	for where, b := range files {
		for _, n := range needles {
			if bytes.Contains(b, n) {
				t.Errorf("%s holds %q", where, n)
			}
		}
	}
}

func selfSigned(t testing.TB, key ed25519.PrivateKey, serial int64) []byte {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_900_000_000, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// A renewed certificate keeps the device's key: the device republishes at
// once. A device whose key changed is a new device: its publication waits.
func TestRenewedDeviceIsNotNew(t *testing.T) {
	h := newHarness(t, directory.DefaultLimits)
	c := h.device("alpha", "phone")
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	setCert := func(der []byte) {
		if err := h.st.UpdateDeviceCert(ctx, c.DeviceID, hex.EncodeToString(der[:8]), der, nil, time.Unix(1_900_000_000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	setCert(selfSigned(t, key, 1))
	h.publish("alpha/phone", "+420123456789")
	setCert(selfSigned(t, key, 2))
	if p := h.publish("alpha/phone", "+420123456789"); p.State != api.DirPublished {
		t.Fatalf("after a renewal: %+v", p)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	setCert(selfSigned(t, other, 3))
	if p := h.publish("alpha/phone", "+420123456789"); p.State != api.DirReplacementPending {
		t.Fatalf("after a key change: %+v", p)
	}
}
