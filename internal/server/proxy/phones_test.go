package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// phoneProxy runs a second proxy over the rig's store with a phone port;
// it returns the device and phone addresses.
func phoneProxy(t *testing.T, r *rig) (*Proxy, string, string) {
	t.Helper()
	p, err := New(r.p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	dln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddPhoneListener(pln); err != nil {
		t.Fatal(err)
	}
	if err := p.AddPhoneListener(pln); err != ErrPhonesServing {
		t.Fatalf("second phone listener: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Serve(ctx, dln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return p, dln.Addr().String(), pln.Addr().String()
}

// rawSIP is a TLS connection that reads whole SIP responses.
type rawSIP struct {
	c *tls.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, r *rig, addr string, conf *tls.Config) *rawSIP {
	t.Helper()
	if conf == nil {
		conf = &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1"}
	}
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawSIP{c: c, r: bufio.NewReader(c)}
}

func (s *rawSIP) send(t *testing.T, msg string) {
	t.Helper()
	if _, err := io.WriteString(s.c, msg); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next response, or "" if none comes within d.
func (s *rawSIP) recv(d time.Duration) string {
	s.c.SetReadDeadline(time.Now().Add(d))
	var b strings.Builder
	n := 0
	for {
		l, err := s.r.ReadString('\n')
		b.WriteString(l)
		if err != nil {
			return ""
		}
		if m := regexp.MustCompile(`(?i)^(content-length|l)\s*:\s*(\d+)`).FindStringSubmatch(l); m != nil {
			n, _ = strconv.Atoi(m[2])
		}
		if l == "\r\n" {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(s.r, body); err != nil {
		return ""
	}
	return b.String() + string(body)
}

// answer responds to a request read by recv, as a phone does.
func (s *rawSIP) answer(t *testing.T, req string, code int, reason string) {
	t.Helper()
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, l := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			b.WriteString(l + "\r\n")
		case "to", "t":
			b.WriteString(l + ";tag=phone\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	if _, err := io.WriteString(s.c, b.String()); err != nil {
		t.Errorf("answer: %v", err) // not Fatal: called from a goroutine
	}
}

func rawRequest(method, callID string, cseq int, cseqMethod, extra string) string {
	return fmt.Sprintf("%s sip:bob@example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-%s-%d\r\n"+
		"From: <sip:alice@example.org>;tag=a1\r\nTo: <sip:bob@example.org>\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n%sContent-Length: 0\r\n\r\n",
		method, callID, cseq, callID, cseq, cseqMethod, extra)
}

// TestPhonePortAsksNoCertificate: the device port asks every client for a
// certificate (the request that made linphonec stop at a password
// prompt); the phone port asks none, and takes digest logins only.
func TestPhonePortAsksNoCertificate(t *testing.T) {
	r, _ := newRig(t, nil)
	_, devAddr, phoneAddr := phoneProxy(t, r)
	asked := func(addr string) bool {
		was := false
		conf := &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				was = true
				return &tls.Certificate{}, nil
			}}
		c, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return was
	}
	if !asked(devAddr) {
		t.Fatal("the device port did not ask for a certificate")
	}
	if asked(phoneAddr) {
		t.Fatal("the phone port asked for a certificate")
	}
	// A device's certificate offered on the phone port is not asked for,
	// so it is never taken as an identity: the request is challenged.
	r.account("alice", "a1")
	cert := r.issue("alice@example.org/a1", nil)
	s := dialRaw(t, r, phoneAddr, &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}})
	s.send(t, rawRequest("REGISTER", "reg-1", 1, "REGISTER", "Contact: <sip:alice@127.0.0.1:5999;transport=tls>\r\n"))
	if res := s.recv(5 * time.Second); !strings.HasPrefix(res, "SIP/2.0 401") || !strings.Contains(res, "WWW-Authenticate: Digest") {
		t.Fatalf("REGISTER on the phone port: %q", res)
	}
}

// TestNotAllowedAllowAndACK: a method without a handler gets 405 with an
// Allow header naming the registered methods (RFC 3261 §21.4.6), and the
// ACK for it gets no answer at all (§17.2.1).
func TestNotAllowedAllowAndACK(t *testing.T) {
	r, _ := newRig(t, nil)
	_, _, phoneAddr := phoneProxy(t, r)
	for _, addr := range []string{r.addr, phoneAddr} {
		s := dialRaw(t, r, addr, nil)
		// INVITE, SUBSCRIBE and PUBLISH are handled now; an extension method is not.
		for i, m := range []string{"FOO", "BAR"} {
			id := fmt.Sprintf("na-%s-%d", m, i)
			s.send(t, rawRequest(m, id, 1, m, ""))
			res := s.recv(5 * time.Second)
			if !strings.HasPrefix(res, "SIP/2.0 405") {
				t.Fatalf("%s: %q", m, res)
			}
			allow := regexp.MustCompile(`(?m)^Allow: (.*)\r$`).FindStringSubmatch(res)
			if allow == nil {
				t.Fatalf("405 without Allow: %q", res)
			}
			want := r.p.srv.RegisteredMethods()
			for _, w := range want {
				if !strings.Contains(allow[1], w) {
					t.Errorf("Allow %q lacks %s", allow[1], w)
				}
			}
			if strings.Contains(allow[1], m) {
				t.Errorf("Allow %q names %s, which was refused", allow[1], m)
			}
			if i == 0 {
				// An ACK that matches nothing gets no answer either.
				s.send(t, rawRequest("ACK", id, 1, "ACK", ""))
				if res := s.recv(1500 * time.Millisecond); res != "" {
					t.Fatalf("the ACK was answered: %q", res)
				}
			}
		}
		// The connection still works, and OPTIONS lists the methods too.
		s.send(t, rawRequest("OPTIONS", "opt", 1, "OPTIONS", ""))
		if res := s.recv(5 * time.Second); !strings.HasPrefix(res, "SIP/2.0 200") || !strings.Contains(res, "Allow: ") {
			t.Fatalf("OPTIONS: %q", res)
		}
	}
}

// twoPhones is an Authenticator with two phones of alice sharing the
// login name "alice", told apart by their passwords.
type twoPhones struct {
	oneCredential
	attempted []int64
}

func (a *twoPhones) SIPCredentials(_ context.Context, username string) ([]Credential, error) {
	if username != "alice" {
		return nil, &Refusal{Status: 403, Reason: "Forbidden"}
	}
	return []Credential{
		{ID: Identity{AccountID: 1, DeviceID: 3, Account: "alice@example.org", Device: "desk"}, HA1: HA1("alice", "example.org", "desk-pw")},
		{ID: Identity{AccountID: 1, DeviceID: 5, Account: "alice@example.org", Device: "mobile"}, HA1: HA1("alice", "example.org", "mobile-pw")},
	}, nil
}

func (a *twoPhones) SIPAttempt(_ context.Context, id int64) error {
	a.attempted = append(a.attempted, id)
	return nil
}

// TestDigestLoginByAddressOfRecord: the digest username is the account's
// user name; with two phones, the password picks the device, and every
// attempt counts against the login name's one counter.
func TestDigestLoginByAddressOfRecord(t *testing.T) {
	p, _ := digestProxy(t, nil)
	auth := &twoPhones{}
	p.cfg.Auth = auth
	try := func(password string, nc int) (*Identity, digestVerdict) {
		nonce := p.nonce(time.Now())
		uri := "sip:x@example.org"
		ha1 := md5hex("alice:example.org:" + password)
		resp := md5hex(fmt.Sprintf("%s:%s:%08x:cn:auth:%s", ha1, nonce, nc, md5hex("MESSAGE:"+uri)))
		h := fmt.Sprintf(`Digest username="alice", realm="example.org", nonce="%s", uri="%s", qop=auth, nc=%08x, cnonce="cn", response="%s", algorithm=MD5`, nonce, uri, nc, resp)
		if _, err := digest.ParseCredentials(h); err != nil {
			t.Fatal(err)
		}
		return p.verifyDigest(context.Background(), digestRequest("192.0.2.1:5000", h))
	}
	for _, c := range []struct{ pw, device string }{{"desk-pw", "desk"}, {"mobile-pw", "mobile"}} {
		id, v := try(c.pw, 1)
		if id == nil || id.Device != c.device || id.Account != "alice@example.org" {
			t.Fatalf("password of %s: %+v %+v", c.device, id, v)
		}
	}
	if id, v := try("neither", 1); id != nil || v.status != 403 {
		t.Fatalf("wrong password: %+v %+v", id, v)
	}
	for _, d := range auth.attempted {
		if d != 3 {
			t.Fatalf("attempts counted against devices %v, want the login name's first phone (3) only", auth.attempted)
		}
	}
}

// TestPhoneTargets: an encrypted message skips the recipient's phones and
// its 200 names each in a Warning; plain text reaches them. The sender's
// own phones get no copy of either: a phone would show its account's
// message as one from itself.
func TestPhoneTargets(t *testing.T) {
	r, _ := newRig(t, nil)
	r.account("alice", "a1", "a2", "phone1")
	r.account("bob", "b1", "phone2", "phone3")
	r.friends("alice", "bob")
	a1 := r.dev("alice", "a1")
	pending := func(account, device string) int {
		ds, err := r.db.Pending(context.Background(), r.deviceID(account, device), 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds)
	}
	res := a1.send("bob", "ciphertext")
	if res.StatusCode != 200 {
		t.Fatalf("envelope: %d %s", res.StatusCode, res.Reason)
	}
	var warns []string
	for _, h := range res.GetHeaders("Warning") {
		warns = append(warns, h.Value())
	}
	want := []string{`399 example.org "not delivered to bob@example.org/phone2: cannot receive encrypted messages"`,
		`399 example.org "not delivered to bob@example.org/phone3: cannot receive encrypted messages"`}
	if strings.Join(warns, "|") != strings.Join(want, "|") {
		t.Fatalf("warnings %q, want %q", warns, want)
	}
	got := map[string]int{"b1": pending("bob", "b1"), "phone2": pending("bob", "phone2"), "a2": pending("alice", "a2"), "phone1": pending("alice", "phone1")}
	if fmt.Sprint(got) != "map[a2:1 b1:1 phone1:0 phone2:0]" {
		t.Fatalf("envelope copies: %v", got)
	}
	res = a1.sendAs("alice", "bob", "text/plain;charset=UTF-8", []byte("plain"))
	if res.StatusCode != 200 || len(res.GetHeaders("Warning")) != 0 {
		t.Fatalf("plain text: %d %s %v", res.StatusCode, res.Reason, res.GetHeaders("Warning"))
	}
	got = map[string]int{"b1": pending("bob", "b1"), "phone2": pending("bob", "phone2"), "phone3": pending("bob", "phone3"), "a2": pending("alice", "a2"), "phone1": pending("alice", "phone1")}
	if fmt.Sprint(got) != "map[a2:2 b1:2 phone1:0 phone2:1 phone3:1]" {
		t.Fatalf("plain copies: %v", got)
	}
	// Between accounts without phones, no Warning.
	r.account("carol", "c1")
	r.friends("alice", "carol")
	if res := a1.send("carol", "ciphertext"); res.StatusCode != 200 || len(res.GetHeaders("Warning")) != 0 {
		t.Fatalf("to carol: %d %v", res.StatusCode, res.GetHeaders("Warning"))
	}
}

// phoneAuth is certAuth plus digest logins: every "sip" device of an
// account logs in as the account's user with password "pw-DEVICE".
type phoneAuth struct{ certAuth }

func (a phoneAuth) SIPCredentials(ctx context.Context, username string) ([]Credential, error) {
	acct, err := a.st.Account(ctx, username+"@"+domain)
	if err != nil {
		return nil, &Refusal{Status: 403, Reason: "Forbidden"}
	}
	ds, err := a.st.Devices(ctx, acct.ID)
	if err != nil {
		return nil, err
	}
	var out []Credential
	for _, d := range ds {
		if d.Suite == "sip" {
			out = append(out, Credential{ID: Identity{AccountID: acct.ID, DeviceID: d.ID, Account: acct.Name, Device: d.Name},
				HA1: HA1(username, domain, "pw-"+d.Name)})
		}
	}
	return out, nil
}

// TestPhoneStaysRegistered: a phone registered on the phone port keeps
// its connection past the idle timeout, and messages for it arrive over
// that connection.
func TestPhoneStaysRegistered(t *testing.T) {
	r, _ := newRig(t, func(c *Config) {
		c.Auth = phoneAuth{certAuth{c.Store}}
		// Long enough for the digest exchange and the registration to
		// be handled on a loaded machine: the registration, not the
		// traffic, must keep the connection.
		c.Limits.IdleTimeout = 2 * time.Second
	})
	r.account("alice", "phone1")
	r.account("bob", "b1")
	r.friends("alice", "bob")
	_, devAddr, phoneAddr := phoneProxy(t, r)
	s := dialRaw(t, r, phoneAddr, nil)
	register := func(cseq int, auth string) string {
		return fmt.Sprintf("REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-reg-%d\r\n"+
			"From: <sip:alice@example.org>;tag=p1\r\nTo: <sip:alice@example.org>\r\nCall-ID: reg-phone\r\nCSeq: %d REGISTER\r\nMax-Forwards: 70\r\n"+
			"Contact: <sip:alice@127.0.0.1:5999;transport=tls>\r\nExpires: 600\r\n%sContent-Length: 0\r\n\r\n", cseq, cseq, auth)
	}
	s.send(t, register(1, ""))
	ch := s.recv(5 * time.Second)
	nonce := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(ch)
	if nonce == nil {
		t.Fatalf("no challenge: %q", ch)
	}
	ha1 := md5hex("alice:example.org:pw-phone1")
	resp := md5hex(fmt.Sprintf("%s:%s:%08x:cn:auth:%s", ha1, nonce[1], 1, md5hex("REGISTER:sip:example.org")))
	s.send(t, register(2, fmt.Sprintf("Authorization: Digest username=\"alice\", realm=\"example.org\", nonce=\"%s\", uri=\"sip:example.org\", qop=auth, nc=00000001, cnonce=\"cn\", response=\"%s\", algorithm=MD5\r\n", nonce[1], resp)))
	if res := s.recv(5 * time.Second); !strings.HasPrefix(res, "SIP/2.0 200") {
		t.Fatalf("register: %q", res)
	}
	// Past the idle timeout: a connection opened after the registration
	// and left silent is closed for it, so the phone's has been idle
	// longer than that.
	idle := dialRaw(t, r, phoneAddr, nil)
	idle.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if n, err := idle.r.ReadByte(); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent connection was not closed for idleness: read %q %v", n, err)
	}
	// bob sends through the proxy that has the phone port: it holds the
	// phone's binding. The phone answers, as the node waits for an online
	// device's answer before the sender's.
	got := make(chan string, 1)
	go func() {
		in := s.recv(10 * time.Second)
		if in != "" {
			s.answer(t, in, 200, "OK")
		}
		got <- in
	}()
	b1 := r.dev("bob", "b1")
	req := sip.NewRequest(sip.MESSAGE, b1.uri("alice"))
	from := &sip.FromHeader{Address: b1.uri("bob"), Params: sip.NewParams()}
	from.Params.Add("tag", "b1")
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: b1.uri("alice"), Params: sip.NewParams()})
	ct := sip.ContentTypeHeader("text/plain")
	req.AppendHeader(&ct)
	req.SetBody([]byte("to the phone"))
	req.SetTransport("TLS")
	req.SetDestination(devAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := b1.cli.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("bob's message: %v %v", res, err)
	}
	in := <-got
	if !strings.HasPrefix(in, "MESSAGE sip:alice@") || !strings.HasSuffix(in, "to the phone") || !strings.Contains(in, "P-Asserted-Identity: <sip:bob@example.org;gr=b1>") {
		t.Fatalf("the phone got %q", in)
	}
}

// FuzzDigestPhoneLogins runs the digest check with a login name shared by
// two phones: nothing but one phone's right response verifies, and it
// names that phone.
func FuzzDigestPhoneLogins(f *testing.F) {
	p, _ := digestProxy(f, nil)
	p.cfg.Auth = &twoPhones{}
	n := p.nonce(time.Now())
	answerAs := func(password, uri string, nc int) string {
		ha1 := md5hex("alice:example.org:" + password)
		resp := md5hex(fmt.Sprintf("%s:%s:%08x:cn:auth:%s", ha1, n, nc, md5hex("MESSAGE:"+uri)))
		return fmt.Sprintf(`Digest username="alice", realm="example.org", nonce="%s", uri="%s", qop=auth, nc=%08x, cnonce="cn", response="%s", algorithm=MD5`, n, uri, nc, resp)
	}
	f.Add(answerAs("desk-pw", "sip:x@example.org", 1))
	f.Add(answerAs("mobile-pw", "sip:x@example.org", 2))
	f.Add(answerAs("other", "sip:x@example.org", 3))
	f.Add(`Digest username="alice", realm="example.org"`)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, h string) {
		p.guesses = guesses{pol: p.guesses.pol}
		p.nonces = nonceCounts{}
		id, v := p.verifyDigest(ctx, digestRequest("203.0.113.1:5061", h))
		if id == nil {
			if !v.challenge && (v.status < 400 || v.status > 599) {
				t.Fatalf("refusal without a status: %+v", v)
			}
			return
		}
		cr, err := digest.ParseCredentials(h)
		if err != nil {
			t.Fatalf("accepted unparsable credentials: %v", err)
		}
		pw := map[string]string{"desk": "desk-pw", "mobile": "mobile-pw"}[id.Device]
		ha1 := md5hex("alice:example.org:" + pw)
		ha2 := md5hex("MESSAGE:" + cr.URI)
		want := md5hex(ha1 + ":" + cr.Nonce + ":" + ha2)
		if cr.QOP != "" {
			want = md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, cr.Nonce, cr.Nc, cr.Cnonce, cr.QOP, ha2))
		}
		if cr.Username != "alice" || pw == "" || strings.ToLower(cr.Response) != want {
			t.Fatalf("accepted %q as %+v", h, id)
		}
	})
}
