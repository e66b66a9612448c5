package e2e

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// fedCluster is one cluster of a federation test: its own domain and CA,
// on fixed loopback ports so it can be restarted where its peers expect it.
type fedCluster struct {
	*cluster
	domain   string
	api, sip string
}

func newFedCluster(t *testing.T, domain string) *fedCluster {
	t.Helper()
	tmp := t.TempDir()
	c := &cluster{t: t, tmp: tmp, data: filepath.Join(tmp, "data"), pw: filepath.Join(tmp, "pw")}
	os.WriteFile(c.pw, []byte("federation password\n"), 0o600)
	mustRun(t, nil, "phonexd", "init", "--data", c.data, "--domain", domain, "--host", "127.0.0.1")
	// No phone port: its default (the SIP port's next) could be another
	// cluster's port on a shared loopback. FED_DEBUG=1 logs at debug level.
	conf := filepath.Join(c.data, "phonexd.conf")
	cb, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	cs := strings.Replace(string(cb), "\nsip_phone_addr = \n", "\nsip_phone_addr = off\n", 1)
	if os.Getenv("FED_DEBUG") != "" {
		cs = strings.Replace(cs, "log_level = info", "log_level = debug", 1)
	}
	if err := os.WriteFile(conf, []byte(cs), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fedCluster{cluster: c, domain: domain, api: freeport.Addr(t), sip: freeport.Addr(t)}
	f.start()
	return f
}

func (f *fedCluster) start() { f.n = serveOn(f.t, f.data, f.api, f.sip) }

func (f *fedCluster) caFile() string { return filepath.Join(f.data, "ca.pem") }

// enroll makes user@domain with its first device.
func (f *fedCluster) enroll(user, dev string) {
	f.t.Helper()
	act := decode[map[string]string](f.t, mustRun(f.t, nil, "phonexd", "user", "add", "--data", f.data, user+"@"+f.domain, "--json"))
	mustRun(f.t, nil, "phonex", "enroll", user+"@"+f.domain, "--profile", f.profile(user+"/"+dev), "--server", f.n.api,
		"--ca-file", f.caFile(), "--code", act["code"], "--device", dev, "--password-file", f.pw)
}

// peer pins other (its CA file, API and SIP) on f.
func (f *fedCluster) peer(other *fedCluster) {
	f.t.Helper()
	mustRun(f.t, nil, "phonexd", "federation", "add", other.domain, "--data", f.data, "--ca-file", other.caFile(), "--api", other.api, "--sip", other.sip)
}

type peerInfo struct {
	Domain    string `json:"domain"`
	CASHA256  string `json:"ca_sha256"`
	Presented string `json:"presented_ca_sha256"`
	Queued    int64  `json:"queued_messages"`
	LastError string `json:"last_error"`
}

func (f *fedCluster) peers() map[string]peerInfo {
	f.t.Helper()
	out := map[string]peerInfo{}
	for _, p := range decode[[]peerInfo](f.t, mustRun(f.t, nil, "phonexd", "federation", "list", "--data", f.data, "--json")) {
		out[p.Domain] = p
	}
	return out
}

func fingerprintOf(t *testing.T, pemFile string) string {
	t.Helper()
	data, err := os.ReadFile(pemFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(h[:])
}

// TestFederation: alpha@a.example and bravo@b.example, on two clusters
// with their own CAs, add each other and exchange messages with receipts
// both ways; a third cluster presenting a CA of its own for b.example is
// refused and nothing of it is delivered; while b is down, a keeps
// alpha's messages (across a restart of a) and delivers them, once each
// and in order, when b returns.
func TestFederation(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	a.peer(b)
	b.peer(a)
	if p := a.peers()["b.example"]; p.CASHA256 != fingerprintOf(t, b.caFile()) {
		t.Fatalf("a pinned %+v, want b's CA", p)
	}
	a.enroll("alpha", "a1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	cs := decode[[]map[string]any](t, a.mustPx("alpha/a1", "contacts", "--json"))
	if len(cs) != 1 || cs[0]["user"] != "bravo@b.example" {
		t.Fatalf("alpha's contacts: %v", cs)
	}

	b1 := b.listen("bravo/b1")
	a1 := a.listen("alpha/a1")
	waitFor(t, "both registered", 30*time.Second, func() bool { return b1.has("ready", "") && a1.has("ready", "") })
	sent := decode[map[string]string](t, a.mustPx("alpha/a1", "send", "bravo@b.example", "hello from a", "--json"))
	waitFor(t, "a → b", 15*time.Second, func() bool { return len(b1.texts(all)) == 1 })
	if e := b1.first("message"); e.From != "alpha@a.example" || e.FromDevice != "a1" || e.Text != "hello from a" || e.Protocol != "ratchet" {
		t.Fatalf("message at bravo: %+v", e)
	}
	waitFor(t, "delivery receipt b → a", 15*time.Second, func() bool { return a1.has("delivered", sent["id"]) })
	b.mustPx("bravo/b1", "read", "alpha@a.example")
	waitFor(t, "read receipt b → a", 15*time.Second, func() bool { return a1.has("read", sent["id"]) })

	back := decode[map[string]string](t, b.mustPx("bravo/b1", "send", "alpha@a.example", "hello from b", "--json"))
	waitFor(t, "b → a", 15*time.Second, func() bool { return len(a1.texts(func(e event) bool { return !e.Outgoing })) == 1 })
	if got := a1.texts(func(e event) bool { return !e.Outgoing }); got[0] != "hello from b" {
		t.Fatalf("alpha got %q", got)
	}
	waitFor(t, "delivery receipt a → b", 15*time.Second, func() bool { return b1.has("delivered", back["id"]) })

	// bravo removes alpha: alpha's next message is refused, as within one
	// cluster, and b stores nothing of it.
	b.mustPx("bravo/b1", "contacts", "remove", "alpha@a.example")
	r0 := a.px("alpha/a1", "send", "bravo@b.example", "after removal")
	if r0.code == 0 || !strings.Contains(r0.err, "not allowed") {
		t.Fatalf("send after removal: exit %d %q", r0.code, r0.err)
	}
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")

	// A third cluster claims b.example with a CA of its own. a refuses its
	// node on the API (its device cannot even add alpha) and records the
	// CA it presented; a message its node forwards over SIP is refused
	// too, waits at the forger, and alpha gets nothing of it.
	f := newFedCluster(t, "b.example")
	f.peer(a)
	f.enroll("bravo", "forged")
	r := f.px("bravo/forged", "contacts", "add", "alpha@a.example")
	if r.code == 0 || !strings.Contains(r.err, "not issued by the CA pinned for b.example") {
		t.Fatalf("forged contact add: exit %d %q", r.code, r.err)
	}
	forgedCA := fingerprintOf(t, f.caFile())
	if p := a.peers()["b.example"]; p.Presented != forgedCA || p.CASHA256 != fingerprintOf(t, b.caFile()) {
		t.Fatalf("a after the forged call: %+v, want b's pin kept and the forged CA %s recorded", p, forgedCA)
	}
	// The forger's node forwards a message as if bravo's device had sent
	// one: written into its queue directly, since no device can get that
	// far through the API.
	f.n.stop(t)
	fdb, err := sql.Open("sqlite", "file:"+filepath.Join(f.data, "phonexd.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var forgedCert []byte
	if err := fdb.QueryRow(`SELECT cert FROM devices WHERE name='forged'`).Scan(&forgedCert); err != nil {
		t.Fatal(err)
	}
	if _, err := fdb.Exec(`INSERT INTO fed_outbound(domain, sender, sender_dev, sender_cert, recipient, content_type, body, created)
		VALUES('a.example', 'bravo@b.example', 'forged', ?, 'alpha@a.example', 'text/plain', 'forged hello', ?)`, forgedCert, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	fdb.Close()
	f.start()
	waitFor(t, "the forger's forward refused", 15*time.Second, func() bool { return f.peers()["a.example"].LastError != "" })
	if fp := f.peers()["a.example"]; fp.Queued != 1 {
		t.Fatalf("the forger's message should wait at its node: %+v", fp)
	}
	time.Sleep(time.Second)
	for _, e := range a1.texts(all) {
		if strings.Contains(e, "forged") {
			t.Fatalf("alpha got a message from the forged cluster: %q", e)
		}
	}
	adb, err := sql.Open("sqlite", "file:"+filepath.Join(a.data, "phonexd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var stored int
	if err := adb.QueryRow(`SELECT COUNT(*) FROM messages WHERE sender_dev='forged'`).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("a stored %d messages of the forged device (%v)", stored, err)
	}
	adb.Close()
	f.n.stop(t)

	// b down: alpha's messages wait in a's store, and arrive when b returns.
	b1.stop()
	b.n.stop(t)
	var want []string
	for i := 0; i < 3; i++ {
		s := fmt.Sprintf("while b was down %d", i)
		want = append(want, s)
		a.mustPx("alpha/a1", "send", "bravo@b.example", s)
	}
	// At least alpha's three; its device may queue more of its own
	// (receipts, notices) meanwhile.
	waitFor(t, "queued at a", 30*time.Second, func() bool { return a.peers()["b.example"].Queued >= 3 })
	// a restarts meanwhile: the queue is in its store, and resumes.
	a1.stop()
	a.n.stop(t)
	a.start()
	time.Sleep(2 * time.Second)
	b.start()
	b1 = b.listen("bravo/b1")
	waitFor(t, "queued messages delivered", 60*time.Second, func() bool { return len(b1.texts(all)) >= 3 })
	time.Sleep(2 * time.Second)
	if got := b1.texts(all); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("bravo got %q after b returned, want %q once each in order", got, want)
	}
	if q := a.peers()["b.example"].Queued; q != 0 {
		t.Fatalf("a still holds %d messages for b", q)
	}
}

// TestFederatedCall: alpha@a.example calls bravo@b.example through both
// clusters' nodes: both see the same SAS, each hears the other's tone, and
// a caller bravo has not listed is refused by b before anything rings.
func TestFederatedCall(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	a.peer(b)
	b.peer(a)
	a.enroll("alpha", "a1")
	a.enroll("carol", "c1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	a.mustPx("carol/c1", "contacts", "add", "bravo@b.example") // bravo does not list carol

	tmp := t.TempDir()
	toneA, toneB := filepath.Join(tmp, "tone1000.wav"), filepath.Join(tmp, "tone600.wav")
	writeTone(t, toneA, 48000, 1000, 6)
	writeTone(t, toneB, 48000, 600, 6)
	recA, recB := filepath.Join(tmp, "heard-by-alpha.wav"), filepath.Join(tmp, "heard-by-bravo.wav")
	b1 := startPhonex(t, "answer", "--json", "--profile", b.profile("bravo/b1"), "--password-file", b.pw, "--play", toneB, "--record", recB)
	b1.waitEvent(t, "listening", 20*time.Second)
	a1 := startPhonex(t, "call", "bravo@b.example", "--json", "--play", toneA, "--record", recA,
		"--profile", a.profile("alpha/a1"), "--password-file", a.pw)
	talk(t, a1, b1, 3*time.Second)
	ea, eb := a1.wait(t, 40*time.Second), b1.wait(t, 40*time.Second)
	sa, sb := ea["secure"], eb["secure"]
	if sa.SAS == "" || sa.SAS != sb.SAS {
		t.Fatalf("SAS differ: caller %q callee %q", sa.SAS, sb.SAS)
	}
	if p := eb["connected"].Peer; p != "alpha@a.example/a1" {
		t.Errorf("bravo sees the caller as %q, want alpha@a.example/a1", p)
	}
	if f := dominant(t, recA); f < 590 || f > 610 {
		t.Errorf("alpha heard %.1f Hz, want bravo's 600 Hz", f)
	}
	if f := dominant(t, recB); f < 990 || f > 1010 {
		t.Errorf("bravo heard %.1f Hz, want alpha's 1000 Hz", f)
	}
	t.Logf("across clusters: SAS %s, %s", sa.SAS, sa.KeyAgreement)

	// carol lists bravo, bravo does not list carol: b refuses.
	if e := a.callFails("carol/c1", "bravo@b.example"); e.Cause != "not_contact" {
		t.Errorf("caller bravo did not list: %+v", e)
	}
}

// TestFederatedPresence: alpha@a.example and bravo@b.example see each
// other's presence through both nodes, changes included; carol@a.example
// lists bravo but bravo does not list her, so she is never shown bravo.
func TestFederatedPresence(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	a.peer(b)
	b.peer(a)
	a.enroll("alpha", "a1")
	a.enroll("carol", "c1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	a.mustPx("carol/c1", "contacts", "add", "bravo@b.example")

	a1 := a.watch("alpha/a1")
	waitFor(t, "a1 ready", 20*time.Second, func() bool { return a1.has("ready", "", "") })
	c1 := a.watch("carol/c1")
	b1 := b.watch("bravo/b1")
	defer func() {
		if t.Failed() {
			t.Logf("a log:\n%s\nb log:\n%s\na1:\n%s\nb1:\n%s", a.n.logs, b.n.logs, a1.stderr.String(), b1.stderr.String())
		}
	}()
	b1.waitShows(t, "alpha@a.example", `online "" [a1]`, 30*time.Second)
	a1.waitShows(t, "bravo@b.example", `online "" [b1]`, 30*time.Second)
	b.mustPx("bravo/b1", "presence", "set", "away", "--note", "lunch")
	a1.waitShows(t, "bravo@b.example", `away "lunch" [b1]`, 30*time.Second)
	a.mustPx("alpha/a1", "presence", "set", "busy")
	b1.waitShows(t, "alpha@a.example", `busy "" [a1]`, 30*time.Second)
	for _, s := range c1.of("bravo@b.example") {
		if s.State != "offline" {
			t.Fatalf("carol was shown bravo: %v", c1.of("bravo@b.example"))
		}
	}
	// alpha stops: bravo sees alpha go offline across the link.
	a1.stop(syscall.SIGTERM)
	b1.waitShows(t, "alpha@a.example", `offline "" []`, 30*time.Second)
}

// TestFederationThroughDNSSEC: b serves its DNSSEC-signed zone; a pins b
// with 'federation add b.example --dns --anchor' from b's DS alone (SRV,
// addresses and the TLSA pin of b's CA, validated), and alpha and bravo
// then exchange a message. An anchor that is not b's (a DS of another
// zone key for b.example) finds nothing to trust and pins nothing.
func TestFederationThroughDNSSEC(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	dnsAddr := freeport.Addr(t)
	b.n.stop(t)
	conf := filepath.Join(b.data, "phonexd.conf")
	cb, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(strings.Replace(string(cb), "\ndns_addr = \n", "\ndns_addr = "+dnsAddr+"\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start()
	anchor := filepath.Join(t.TempDir(), "b.ds")
	if err := os.WriteFile(anchor, []byte(mustRun(t, nil, "phonexd", "dns", "ds", "--data", b.data)), 0o600); err != nil {
		t.Fatal(err)
	}

	// A forged anchor: the DS of a zone key b never had.
	other := newFedCluster(t, "b.example")
	other.n.stop(t)
	wrong := filepath.Join(t.TempDir(), "wrong.ds")
	os.WriteFile(wrong, []byte(mustRun(t, nil, "phonexd", "dns", "ds", "--data", other.data)), 0o600)
	if r := run(t, nil, "phonexd", "federation", "add", "b.example", "--data", a.data, "--dns", dnsAddr, "--anchor", wrong); r.code == 0 {
		t.Fatalf("a forged anchor was trusted: %s", r.out)
	} else {
		t.Logf("forged anchor refused: %s", strings.TrimSpace(r.err))
	}
	if len(a.peers()) != 0 {
		t.Fatalf("pinned with a forged anchor: %+v", a.peers())
	}

	p := decode[struct {
		CASHA256 string `json:"ca_sha256"`
		API      string `json:"api"`
		SIP      string `json:"sip"`
	}](t, mustRun(t, nil, "phonexd", "federation", "add", "b.example", "--data", a.data, "--dns", dnsAddr, "--anchor", anchor, "--json"))
	if p.CASHA256 != fingerprintOf(t, b.caFile()) || p.API != b.api || p.SIP != b.sip {
		t.Fatalf("discovered %+v, want CA %s API %s SIP %s", p, fingerprintOf(t, b.caFile()), b.api, b.sip)
	}
	b.peer(a)
	a.enroll("alpha", "a1")
	b.enroll("bravo", "b1")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	b.mustPx("bravo/b1", "contacts", "add", "alpha@a.example")
	b1 := b.listen("bravo/b1")
	waitFor(t, "b1 registered", 30*time.Second, func() bool { return b1.has("ready", "") })
	a.mustPx("alpha/a1", "send", "bravo@b.example", "found through DNSSEC")
	waitFor(t, "a → b", 15*time.Second, func() bool { return len(b1.texts(all)) == 1 })
	if got := b1.texts(all); got[0] != "found through DNSSEC" {
		t.Fatalf("bravo got %q", got)
	}
}

// TestFederationHostilePeer: b's node (its real node certificate) and a
// node of a cluster a does not federate with send MESSAGEs straight to a's
// SIP port. a refuses every one that a peer may not send, each with its
// own answer, and stores none of them.
func TestFederationHostilePeer(t *testing.T) {
	a := newFedCluster(t, "a.example")
	b := newFedCluster(t, "b.example")
	a.peer(b)
	a.enroll("alpha", "a1")
	b.enroll("bravo", "b1")
	bdb, err := sql.Open("sqlite", "file:"+filepath.Join(b.data, "phonexd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var bravoCert []byte
	if err := bdb.QueryRow(`SELECT cert FROM devices WHERE name='b1'`).Scan(&bravoCert); err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	c := newFedCluster(t, "c.example") // no peer of a
	c.n.stop(t)

	dial := func(data string) *sipClient {
		t.Helper()
		cert, err := tls.LoadX509KeyPair(filepath.Join(data, "server.pem"), filepath.Join(data, "server.key"))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.sip, &tls.Config{RootCAs: a.caPool(),
			ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return &sipClient{t: t, c: conn, r: bufio.NewReader(conn)}
	}
	message := func(from, certHeader, originID string) string {
		extra := "Content-Type: text/plain\r\n"
		if certHeader != "" {
			extra += "X-PhoneX-Device-Cert: " + certHeader + "\r\n"
		}
		if originID != "" {
			extra += "X-PhoneX-Origin-Id: " + originID + "\r\n"
		}
		r := request("MESSAGE", "sip:alpha@a.example", 1, extra, "hostile peer")
		r = strings.Replace(r, "From: <sip:sippy@example.org>", "From: <sip:"+from+">", 1)
		return strings.Replace(r, "To: <sip:alpha@example.org>", "To: <sip:alpha@a.example>", 1)
	}
	good := base64.StdEncoding.EncodeToString(bravoCert)
	bs := dial(b.data)
	for _, tc := range []struct {
		name, from, cert, origin string
		status                   int
		reason                   string
	}{
		{"another domain's account", "mallory@c.example", good, "1", 403, "own domain"},
		{"no device certificate", "bravo@b.example", "", "1", 400, "X-PhoneX-Device-Cert"},
		{"garbage certificate", "bravo@b.example", "!!!", "1", 400, "malformed"},
		{"no origin id", "bravo@b.example", good, "", 400, "X-PhoneX-Origin-Id"},
		{"certificate of another account", "carol@b.example", good, "1", 403, "another account"},
		{"not on alpha's list", "bravo@b.example", good, "2", 403, "contact list"},
	} {
		bs.send(message(tc.from, tc.cert, tc.origin))
		res := bs.recv(5 * time.Second)
		if status(res) != tc.status || !strings.Contains(res, tc.reason) {
			t.Errorf("%s: got %q, want %d with %q", tc.name, strings.SplitN(res, "\r\n", 2)[0], tc.status, tc.reason)
		}
	}
	// A node of a cluster a does not federate with.
	cs := dial(c.data)
	cs.send(message("carl@c.example", good, "1"))
	if res := cs.recv(5 * time.Second); status(res) != 403 || !strings.Contains(res, "no federation") {
		t.Errorf("unknown cluster's node: %q", strings.SplitN(res, "\r\n", 2)[0])
	}
	adb, err := sql.Open("sqlite", "file:"+filepath.Join(a.data, "phonexd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer adb.Close()
	var n int
	if err := adb.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a stored %d messages (%v)", n, err)
	}
}

// TestFederationCAChange: b.example moves to a new CA (a new cluster for
// the domain here). a refuses it and shows the CA it presented until its
// operator accepts it with 'federation accept'; then messages flow.
func TestFederationCAChange(t *testing.T) {
	a := newFedCluster(t, "a.example")
	old := newFedCluster(t, "b.example")
	a.peer(old)
	old.n.stop(t)
	b := newFedCluster(t, "b.example") // the new CA
	b.peer(a)
	a.enroll("alpha", "a1")
	b.enroll("bravo", "b2")
	r := b.px("bravo/b2", "contacts", "add", "alpha@a.example")
	if r.code == 0 || !strings.Contains(r.err, "not issued by the CA pinned") {
		t.Fatalf("before accept: exit %d %q", r.code, r.err)
	}
	newCA := fingerprintOf(t, b.caFile())
	if p := a.peers()["b.example"]; p.Presented != newCA {
		t.Fatalf("a shows %+v, want the presented CA %s", p, newCA)
	}
	p := decode[peerInfo](t, mustRun(t, nil, "phonexd", "federation", "accept", "b.example", "--data", a.data, "--ca-file", b.caFile(),
		"--api", b.api, "--sip", b.sip, "--json"))
	if p.CASHA256 != newCA || p.Presented != "" {
		t.Fatalf("accepted: %+v", p)
	}
	b.mustPx("bravo/b2", "contacts", "add", "alpha@a.example")
	a.mustPx("alpha/a1", "contacts", "add", "bravo@b.example")
	a1 := a.listen("alpha/a1")
	waitFor(t, "a1 registered", 30*time.Second, func() bool { return a1.has("ready", "") })
	b.mustPx("bravo/b2", "send", "alpha@a.example", "after the CA change")
	waitFor(t, "b → a after accept", 15*time.Second, func() bool { return len(a1.texts(all)) == 1 })
	if got := a1.texts(all); got[0] != "after the CA change" {
		t.Fatalf("alpha got %q", got)
	}
}
