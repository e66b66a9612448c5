package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// phoneRC is linphonec's configuration for a standard phone of the
// cluster: SIP over TLS only, the cluster's CA trusted and the server
// certificate checked. Registration settings come after it, or from a
// typed 'register' line.
const phoneRC = `[sip]
bind_address=127.0.0.1
sip_port=-1
sip_tcp_port=0
sip_tls_port=-1
use_ipv6=0
ipv6_migration_done=1
root_ca=%s
verify_server_certs=1
verify_server_cn=1
guess_hostname=0
media_encryption=zrtp
default_proxy=0

[rtp]
bind_address=127.0.0.1
audio_rtp_port=%d
video_rtp_port=%d
text_rtp_port=%d

[sound]
echocancellation=0

[video]
display=0
capture=0
automatically_initiate=0
automatically_accept=0
`

// phoneAccountRC registers at start, without a line typed: the proxy and
// the digest login add-sip printed. The registrar is the outbound proxy
// too, since the test domain has no DNS records that lead to the node.
const phoneAccountRC = `
[proxy_0]
reg_proxy=<%s>
reg_route=<%s;lr>
reg_identity=%s
reg_expires=600
reg_sendregister=1
publish=0

[auth_info_0]
username=%s
passwd=%s
realm=%s
domain=%s
`

// startPhone runs linphonec as a standard phone; nothing is typed into it
// until the caller does.
func startPhone(t *testing.T, home, rc string) *linphonec {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	rtp := freeport.Port(t)
	path := filepath.Join(home, "rc")
	if err := os.WriteFile(path, fmt.Appendf(nil, rc, rtp, rtp+2, rtp+4), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &linphonec{t: t, home: home, done: make(chan struct{})}
	l.start(exec.Command("linphonec", "-c", path, "-d", "6", "-l", filepath.Join(home, "debug.log")))
	return l
}

// logMatch waits until linphonec's debug log matches re.
func (l *linphonec) logMatch(re string, limit time.Duration) bool {
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if rx.MatchString(l.debugLog()) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

type sipDevice struct {
	Device    string `json:"device"`
	Identity  string `json:"identity"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	Realm     string `json:"realm"`
	Registrar string `json:"registrar"`
	Host      string `json:"host"`
	Port      string `json:"port"`
	Source    string `json:"source"`
}

type sendResult struct {
	ID           string   `json:"id"`
	Insecure     bool     `json:"insecure"`
	NotDelivered []string `json:"not_delivered"`
}

// TestStandardPhone: linphonec, a standard SIP phone with the credentials
// of 'phonexd device add-sip', registers over TLS on the phone port with
// the account's user name, with no client certificate and no line typed;
// messages go both ways with the right markings; an encrypted message
// tells its sender the phone did not get it; and an account with only a
// phone has its contacts managed by the operator.
func TestStandardPhone(t *testing.T) {
	requirePeer(t, "linphonec")
	c := newCluster(t)
	c.n = serve(t, c.data)
	if c.n.phones == "" {
		t.Fatal("phonexd printed no phone listener line")
	}
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	ca := filepath.Join(c.data, "ca.pem")

	// add-sip prints the address the node listens on, in words and JSON.
	text := mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "alpha@example.org", "--name", "desk")
	for _, want := range []string{"username: alpha\n", "sip:" + c.n.phones + ";transport=tls (the running node listens there)",
		"register sip:alpha@example.org sip:" + c.n.phones + ";transport=tls PASSWORD"} {
		if !strings.Contains(text, want) {
			t.Errorf("add-sip output lacks %q:\n%s", want, text)
		}
	}
	mustRun(t, nil, "phonexd", "device", "revoke", "--data", c.data, "alpha@example.org/desk")
	cred := decode[sipDevice](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "alpha@example.org", "--name", "linphone", "--json"))
	if cred.Username != "alpha" || cred.Identity != "sip:alpha@example.org" || cred.Registrar != "sip:"+c.n.phones+";transport=tls" ||
		cred.Source != "listener" || cred.Host+":"+cred.Port != c.n.phones {
		t.Fatalf("add-sip --json: %+v (phone port %s)", cred, c.n.phones)
	}

	a1, b1 := c.listen("alpha/a1"), c.listen("bravo/b1")
	waitFor(t, "a1 and b1 registered", 15*time.Second, func() bool { return a1.has("ready", "") && b1.has("ready", "") })

	// The phone registers from its configuration alone: no client
	// certificate is asked for, so nothing waits for a typed line.
	home := filepath.Join(c.tmp, "lp-alpha")
	rc := strings.Replace(phoneRC, "%s", ca, 1) + fmt.Sprintf(phoneAccountRC, cred.Registrar, cred.Registrar, cred.Identity, cred.Username, cred.Password, cred.Realm, cred.Realm)
	lp := startPhone(t, home, rc)
	if !lp.logMatch(`LinphoneRegistrationOk`, 30*time.Second) {
		t.Fatalf("linphonec did not register; output:\n%s\nlog tail:\n%s", lp.output(), tail([]byte(lp.debugLog())))
	}
	if strings.Contains(strings.ToLower(lp.output()), "password") {
		t.Fatalf("linphonec asked for a password:\n%s", lp.output())
	}

	// Phone to a PhoneX contact: insecure at the recipient, an outgoing
	// insecure copy on alpha's other device.
	lp.send("chat sip:bravo@example.org hello-from-the-phone")
	lp.waitOr(t, c, "the phone's message at b1 and a1", 20*time.Second, func() bool {
		return len(b1.texts(func(e event) bool { return e.Text == "hello-from-the-phone" })) == 1 &&
			len(a1.texts(func(e event) bool { return e.Text == "hello-from-the-phone" })) == 1
	})
	for _, l := range []struct {
		name string
		l    *listener
		want event
	}{
		{"b1", b1, event{Type: "message", From: "alpha@example.org", FromDevice: "linphone", Peer: "alpha@example.org", Text: "hello-from-the-phone", Insecure: true}},
		{"a1", a1, event{Type: "message", From: "alpha@example.org", FromDevice: "linphone", Peer: "bravo@example.org", Text: "hello-from-the-phone", Insecure: true, Outgoing: true}},
	} {
		got := l.l.find(func(e event) bool { return e.Text == "hello-from-the-phone" })
		got.ID = ""
		if got != l.want {
			t.Errorf("%s: %+v, want %+v", l.name, got, l.want)
		}
	}

	// An encrypted message reaches a1 but not the phone, and the sender
	// is told so.
	r := decode[sendResult](t, c.mustPx("bravo/b1", "send", "alpha@example.org", "sealed-for-alpha", "--json"))
	if r.Insecure || len(r.NotDelivered) != 1 || r.NotDelivered[0] != "not delivered to alpha@example.org/linphone: cannot receive encrypted messages" {
		t.Fatalf("encrypted send to an account with a phone: %+v", r)
	}
	if out := c.mustPx("bravo/b1", "send", "alpha@example.org", "sealed-again"); !strings.Contains(out, "not delivered to alpha@example.org/linphone: cannot receive encrypted messages") {
		t.Fatalf("send without --json does not say the phone did not get it: %q", out)
	}
	waitFor(t, "the encrypted message at a1", 15*time.Second, func() bool {
		return len(a1.texts(func(e event) bool { return e.Text == "sealed-for-alpha" && !e.Insecure && e.Protocol == "ratchet" })) == 1
	})

	// --insecure: plain text the phone gets too, marked on every side.
	r = decode[sendResult](t, c.mustPx("bravo/b1", "send", "alpha@example.org", "plain-for-alpha", "--insecure", "--json"))
	if !r.Insecure || len(r.NotDelivered) != 0 {
		t.Fatalf("insecure send: %+v", r)
	}
	if !lp.logMatch(`plain-for-alpha`, 20*time.Second) {
		t.Fatalf("linphonec did not get the plain message:\n%s", lp.output())
	}
	plainAt := func() bool {
		return len(a1.texts(func(e event) bool {
			return e.Text == "plain-for-alpha" && e.Insecure && e.From == "bravo@example.org" && e.FromDevice == "b1"
		})) == 1
	}
	for deadline := time.Now().Add(15 * time.Second); !plainAt(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			// What a1 saw, and what it and the node said, to tell a
			// message lost from one refused or one marked otherwise.
			t.Fatalf("timed out waiting for the plain message at a1; a1's events:\n%s\nthe node's log:\n%s",
				a1.dump(), tail(c.n.logs.Bytes()))
		}
	}
	if strings.Contains(lp.debugLog(), "sealed-for-alpha") {
		t.Fatal("the phone saw the encrypted message's text")
	}
	inbox := decode[[]map[string]any](t, c.mustPx("bravo/b1", "inbox", "--with", "alpha@example.org", "--json"))
	marks := map[string]bool{}
	for _, m := range inbox {
		ins, _ := m["insecure"].(bool)
		marks[m["text"].(string)] = ins
	}
	if !marks["plain-for-alpha"] || marks["sealed-for-alpha"] || !marks["hello-from-the-phone"] {
		t.Fatalf("bravo's inbox markings (text: insecure): %v", marks)
	}

	// carol has only a phone: the operator manages her contacts.
	mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "carol@example.org")
	ccred := decode[sipDevice](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "carol@example.org", "--name", "phone", "--json"))
	c.mustPx("bravo/b1", "contacts", "add", "carol@example.org")
	if r := c.px("bravo/b1", "send", "carol@example.org", "before-listed", "--insecure"); r.code == 0 || !strings.Contains(r.err, "not allowed") {
		t.Fatalf("send to carol before she lists bravo: exit %d %q", r.code, r.err)
	}
	mustRun(t, nil, "phonexd", "contacts", "add", "--data", c.data, "carol@example.org", "bravo@example.org")
	// Encrypted, it cannot reach her phone: it fails, never goes in plain.
	if r := c.px("bravo/b1", "send", "carol@example.org", "sealed-for-carol"); r.code == 0 || !strings.Contains(r.err, "--insecure") {
		t.Fatalf("encrypted send to a phone-only account: exit %d %q", r.code, r.err)
	}
	list := decode[[]map[string]string](t, mustRun(t, nil, "phonexd", "contacts", "list", "--data", c.data, "carol@example.org", "--json"))
	if len(list) != 1 || list[0]["contact"] != "bravo@example.org" || list[0]["status"] != "active" {
		t.Fatalf("carol's contacts: %v", list)
	}
	// carol's phone registers with the line add-sip printed.
	chome := filepath.Join(c.tmp, "lp-carol")
	clp := startPhone(t, chome, strings.Replace(phoneRC, "%s", ca, 1))
	time.Sleep(3 * time.Second) // no prompt without a terminal: let the core start
	clp.send(fmt.Sprintf("register %s %s %s", ccred.Identity, ccred.Registrar, ccred.Password))
	if !clp.logMatch(`LinphoneRegistrationOk`, 30*time.Second) {
		t.Fatalf("carol's linphonec did not register:\n%s", clp.output())
	}
	c.mustPx("bravo/b1", "send", "carol@example.org", "plain-for-carol", "--insecure")
	if !clp.logMatch(`plain-for-carol`, 20*time.Second) {
		t.Fatal("carol's phone did not get bravo's message")
	}
	if strings.Contains(clp.debugLog(), "sealed-for-carol") {
		t.Fatal("the failed encrypted message reached carol's phone")
	}
	mustRun(t, nil, "phonexd", "contacts", "remove", "--data", c.data, "carol@example.org", "bravo@example.org")
	if r := c.px("bravo/b1", "send", "carol@example.org", "after-removal", "--insecure"); r.code == 0 || !strings.Contains(r.err, "not allowed") {
		t.Fatalf("send to carol after the operator removed bravo: exit %d %q", r.code, r.err)
	}

	// With the node stopped, add-sip says the address is the configured
	// one (sip_addr 127.0.0.1:5061 of init, so the phone port 5062).
	c.n.stop(t)
	if _, err := os.Stat(filepath.Join(c.data, "listening.json")); !os.IsNotExist(err) {
		t.Fatalf("listening.json left behind by a stopped node: %v", err)
	}
	off := decode[sipDevice](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "carol@example.org", "--name", "spare", "--json"))
	if off.Source != "configuration" || off.Registrar != "sip:127.0.0.1:5062;transport=tls" {
		t.Fatalf("add-sip with the node stopped: %+v", off)
	}
}

// find returns the first message event matching f.
func (l *listener) find(f func(event) bool) event {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Type == "message" && f(e) {
			return e
		}
	}
	return event{}
}

// waitOr is waitFor that shows linphonec's SIP exchange and the node's log
// when it times out.
func (l *linphonec) waitOr(t *testing.T, c *cluster, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			var sipLines []string
			for _, line := range strings.Split(l.debugLog(), "\n") {
				if strings.HasPrefix(line, "SIP/2.0 ") || strings.HasPrefix(line, "MESSAGE ") || strings.HasPrefix(line, "Warning:") {
					sipLines = append(sipLines, line)
				}
			}
			t.Fatalf("timed out waiting for %s\nlinphonec SIP lines:\n%s\nnode log:\n%s", what, strings.Join(sipLines, "\n"), tail(c.n.logs.Bytes()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPhonePortMethods, against the real phonexd with a raw TLS client:
// the device port asks for a client certificate and the phone port does
// not; on both, a method the node does not handle gets 405 with Allow
// (RFC 3261 §21.4.6) and the ACK for it gets no answer (§17.2.1).
func TestPhonePortMethods(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	for _, port := range []struct {
		name, addr string
		asks       bool
	}{{"device port", c.n.sip, true}, {"phone port", c.n.phones, false}} {
		asked := false
		conn, err := tls.Dial("tcp", port.addr, &tls.Config{RootCAs: c.caPool(), ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				asked = true
				return &tls.Certificate{}, nil
			}})
		if err != nil {
			t.Fatalf("%s: %v", port.name, err)
		}
		defer conn.Close()
		if asked != port.asks {
			t.Fatalf("%s: client certificate asked %v, want %v", port.name, asked, port.asks)
		}
		s := &sipClient{t: t, c: conn, r: bufio.NewReader(conn)}
		// Every method of RFC 3261 and its extensions that phones send is
		// handled now (calls, presence); an unknown extension method is not.
		invite := request("FOO", "sip:alpha@example.org", 1, "", "")
		s.send(invite)
		res := s.recv(5 * time.Second)
		allow := regexp.MustCompile(`(?m)^Allow: (.*)\r$`).FindStringSubmatch(res)
		if status(res) != 405 || allow == nil {
			t.Fatalf("%s: FOO answered %q", port.name, res)
		}
		for _, m := range []string{"MESSAGE", "OPTIONS", "REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "SUBSCRIBE", "PUBLISH"} {
			if !strings.Contains(allow[1], m) {
				t.Errorf("%s: Allow %q lacks %s", port.name, allow[1], m)
			}
		}
		callID := regexp.MustCompile(`(?m)^Call-ID: (\S+)\r$`).FindStringSubmatch(invite)[1]
		branch := regexp.MustCompile(`branch=(\S+)\r`).FindStringSubmatch(invite)[1]
		ack := strings.NewReplacer("FOO sip:", "ACK sip:", "CSeq: 1 FOO", "CSeq: 1 ACK").Replace(invite)
		if !strings.Contains(ack, callID) || !strings.Contains(ack, branch) {
			t.Fatal("the ACK is not for the INVITE's transaction")
		}
		s.send(ack)
		if res := s.recv(1500 * time.Millisecond); res != "" {
			t.Fatalf("%s: the ACK was answered: %q", port.name, res)
		}
		s.send(request("OPTIONS", "sip:example.org", 2, "", ""))
		if res := s.recv(5 * time.Second); status(res) != 200 || !strings.Contains(res, "\r\nAllow: ") {
			t.Fatalf("%s: OPTIONS answered %q", port.name, res)
		}
	}
}

// TestPhoneContactsAPI: an account with only a phone manages its contact
// list over the API with the phone's digest login (HTTP Digest, RFC 7616).
func TestPhoneContactsAPI(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("bravo", "b1", true)
	mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "carol@example.org")
	cred := decode[sipDevice](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "carol@example.org", "--name", "phone", "--json"))
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.caPool(), ServerName: "127.0.0.1"}}}
	base := "https://" + c.n.api
	nc := 0
	// do sends one request, answering the challenge of a first try
	// without credentials with the password.
	do := func(method, path, body, password string) (int, string, http.Header) {
		t.Helper()
		send := func(auth string) *http.Response {
			req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		res := send("")
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		ch := res.Header.Get("WWW-Authenticate")
		if res.StatusCode != 401 || ch == "" {
			t.Fatalf("%s %s without credentials: %d %q", method, path, res.StatusCode, ch)
		}
		nc++
		auth := strings.TrimPrefix(digestAnswer(t, ch, cred.Username, password, method, path, nc), "Authorization: ")
		res = send(strings.TrimSpace(auth))
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b), res.Header
	}
	if code, body, _ := do("GET", "/v1/phone/contacts", "", cred.Password); code != 200 || !strings.Contains(body, `"contacts":[]`) {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, body, _ := do("POST", "/v1/phone/contacts", `{"user":"bravo@example.org"}`, cred.Password); code != 200 || !strings.Contains(body, "bravo@example.org") {
		t.Fatalf("add: %d %s", code, body)
	}
	list := decode[[]map[string]string](t, mustRun(t, nil, "phonexd", "contacts", "list", "--data", c.data, "carol@example.org", "--json"))
	if len(list) != 1 || list[0]["contact"] != "bravo@example.org" {
		t.Fatalf("after the phone's add, the operator sees %v", list)
	}
	if code, body, _ := do("POST", "/v1/phone/contacts", `{"user":"nobody@example.org"}`, cred.Password); code != 404 {
		t.Fatalf("add of a missing account: %d %s", code, body)
	}
	if code, body, _ := do("GET", "/v1/phone/contacts", "", "wrong password"); code != 403 {
		t.Fatalf("wrong password: %d %s", code, body)
	}
	if code, body, _ := do("DELETE", "/v1/phone/contacts/bravo@example.org", "", cred.Password); code != 200 || !strings.Contains(body, `"removed":"bravo@example.org"`) {
		t.Fatalf("remove: %d %s", code, body)
	}
	if code, body, _ := do("GET", "/v1/phone/contacts", "", cred.Password); code != 200 || !strings.Contains(body, `"contacts":[]`) {
		t.Fatalf("list after remove: %d %s", code, body)
	}
	// The per-device login name of earlier versions still names the phone.
	cred.Username = "carol.phone"
	if code, body, _ := do("GET", "/v1/phone/contacts", "", cred.Password); code != 200 || !strings.Contains(body, `"account":"carol@example.org"`) {
		t.Fatalf("list as carol.phone: %d %s", code, body)
	}
	if strings.Contains(c.n.logs.String(), cred.Password) {
		t.Fatal("the phone's password reached the node's log")
	}
}

// dump renders the listener's events, one per line.
func (l *listener) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		fmt.Fprintf(&b, "%+v\n", e)
	}
	return b.String()
}
