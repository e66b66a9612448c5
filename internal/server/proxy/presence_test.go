package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/pidf"
)

// notice is one NOTIFY a watcher received.
type notice struct {
	state string // Subscription-State
	body  []byte
	doc   *pidf.Document
}

// pdev is a presence test device: it registers, publishes and subscribes
// over its own TLS connection and records the NOTIFYs it gets.
type pdev struct {
	*dev
	ua *sipgo.UserAgent

	mu      sync.Mutex
	notices []notice
	callID  string
	fromTag string
	toTag   string
	cseq    uint32
}

func (r *rig) pdev(account, name string) *pdev {
	r.t.Helper()
	cert := r.issue(account+"@"+domain+"/"+name, nil)
	tc := &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname(domain), sipgo.WithUserAgenTLSConfig(tc))
	if err != nil {
		r.t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet))
	srv, _ := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	d := &pdev{dev: &dev{r: r, account: account, name: name, ua: ua, cli: cli}, ua: ua}
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		n := notice{body: req.Body()}
		if h := req.GetHeader("Subscription-State"); h != nil {
			n.state = h.Value()
		}
		n.doc, _ = pidf.Parse(n.body)
		d.mu.Lock()
		d.notices = append(d.notices, n)
		d.mu.Unlock()
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	r.t.Cleanup(func() { ua.Close() })
	return d
}

func (d *pdev) publish(ifMatch, body string, expires int) *sip.Response {
	req := sip.NewRequest(sip.PUBLISH, d.uri(d.account))
	from := &sip.FromHeader{Address: d.uri(d.account), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: d.uri(d.account), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	if ifMatch != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", ifMatch))
	}
	if body != "" {
		ct := sip.ContentTypeHeader(pidf.ContentType)
		req.AppendHeader(&ct)
		req.SetBody([]byte(body))
	}
	return d.do(req)
}

func (d *pdev) doc(state pidf.State, note string) string {
	b, err := (&pidf.Document{Entity: "pres:" + d.account + "@" + domain, Tuples: []pidf.Tuple{{Device: d.name, State: state, Note: note}}}).Marshal()
	if err != nil {
		d.r.t.Fatal(err)
	}
	return string(b)
}

// subscribe starts (or, once started, refreshes) the device's
// subscription to target.
func (d *pdev) subscribe(target string, expires int) *sip.Response {
	d.mu.Lock()
	if d.callID == "" {
		d.callID, d.fromTag = sip.GenerateTagN(16), sip.GenerateTagN(8)
	}
	d.cseq++
	callID, fromTag, toTag, cseq := d.callID, d.fromTag, d.toTag, d.cseq
	d.mu.Unlock()
	req := sip.NewRequest(sip.SUBSCRIBE, d.uri(target))
	from := &sip.FromHeader{Address: d.uri(d.account), Params: sip.NewParams()}
	from.Params.Add("tag", fromTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: d.uri(target), Params: sip.NewParams()}
	if toTag != "" {
		to.Params.Add("tag", toTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.SUBSCRIBE})
	c := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.account, Host: domain, UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	c.Address.UriParams.Add("transport", "tls")
	req.AppendHeader(c)
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Accept", pidf.ContentType))
	req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	res := d.do(req)
	if res.StatusCode == 200 && toTag == "" {
		t, _ := res.To().Params.Get("tag")
		d.mu.Lock()
		d.toTag = t
		d.mu.Unlock()
	}
	return res
}

func (d *pdev) got() []notice {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]notice(nil), d.notices...)
}

// waitNotice waits for the n-th NOTIFY (from 1) and returns it.
func (d *pdev) waitNotice(n int, within time.Duration) notice {
	d.r.t.Helper()
	waitUntil(d.r.t, fmt.Sprintf("NOTIFY %d at %s", n, d.name), within, func() bool { return len(d.got()) >= n })
	return d.got()[n-1]
}

func shows(n notice) string {
	if n.doc == nil {
		return "unparsable"
	}
	a := n.doc.Aggregate()
	return fmt.Sprintf("%s %q %v", a.State, a.Note, a.Devices)
}

func presenceRig(t *testing.T) *rig {
	old := presenceEvery
	presenceEvery = 100 * time.Millisecond
	t.Cleanup(func() { presenceEvery = old })
	r, _ := newRig(t, nil)
	r.account("alice", "laptop", "phone1")
	r.account("bob", "desk")
	r.friends("alice", "bob")
	return r
}

func TestPresenceFlow(t *testing.T) {
	r := presenceRig(t)
	bob := r.pdev("bob", "desk")
	laptop := r.pdev("alice", "laptop")
	if res := bob.register(60); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	if res := bob.subscribe("alice", 600); res.StatusCode != 200 || res.GetHeader("Expires").Value() != "600" {
		t.Fatalf("subscribe: %d %v", res.StatusCode, res.GetHeader("Expires"))
	}
	first := bob.waitNotice(1, 5*time.Second)
	if got := shows(first); got != `offline "" []` || !strings.HasPrefix(first.state, "active;expires=") {
		t.Fatalf("first NOTIFY: %s, %s", got, first.state)
	}

	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"registers", func() { laptop.register(60) }, `online "" [laptop]`},
		{"away", func() {
			if res := laptop.publish("", laptop.doc(pidf.Away, "lunch"), 600); res.StatusCode != 200 || res.GetHeader("SIP-ETag") == nil {
				t.Fatalf("publish: %d", res.StatusCode)
			}
		}, `away "lunch" [laptop]`},
		{"on a call", func() { r.p.Presence().CallStarted("alice@"+domain, "laptop") }, `oncall "" [laptop]`},
		{"call over", func() { r.p.Presence().CallEnded("alice@"+domain, "laptop") }, `away "lunch" [laptop]`},
		{"dnd", func() { laptop.publish("", laptop.doc(pidf.DND, ""), 600) }, `dnd "" [laptop]`},
	}
	n := 1
	for _, s := range steps {
		s.do()
		n++
		if got := shows(bob.waitNotice(n, 5*time.Second)); got != s.want {
			t.Fatalf("%s: watcher sees %s, want %s", s.name, got, s.want)
		}
	}

	// Refresh by entity tag: no new state, no NOTIFY; an unknown tag 412.
	res := laptop.publish("", laptop.doc(pidf.Busy, ""), 600)
	n++
	bob.waitNotice(n, 5*time.Second)
	etag := res.GetHeader("SIP-ETag").Value()
	res = laptop.publish(etag, "", 600)
	if res.StatusCode != 200 || res.GetHeader("SIP-ETag").Value() == etag {
		t.Fatalf("refresh: %d", res.StatusCode)
	}
	if res := laptop.publish(etag, "", 600); res.StatusCode != 412 {
		t.Fatalf("stale entity tag: %d, want 412", res.StatusCode)
	}

	// Invisible is exactly offline: the same document as before alice
	// connected.
	laptop.publish("", laptop.doc(pidf.Invisible, "hiding"), 600)
	n++
	if got := bob.waitNotice(n, 5*time.Second); string(got.body) != string(first.body) {
		t.Fatalf("invisible shows\n%s\nwant what offline shows\n%s", got.body, first.body)
	}
	time.Sleep(300 * time.Millisecond)
	if len(bob.got()) != n {
		t.Fatalf("a refresh or nothing new sent a NOTIFY: %d", len(bob.got()))
	}

	// The connection drops: offline within the sweep.
	laptop.publish("", laptop.doc(pidf.Online, ""), 600)
	n++
	bob.waitNotice(n, 5*time.Second)
	laptop.ua.Close()
	n++
	if got := shows(bob.waitNotice(n, 5*time.Second)); got != `offline "" []` {
		t.Fatalf("after the connection dropped: %s", got)
	}

	// Unsubscribe: a final NOTIFY; the dialog is gone after.
	if res := bob.subscribe("alice", 0); res.StatusCode != 200 {
		t.Fatalf("unsubscribe: %d", res.StatusCode)
	}
	n++
	if got := bob.waitNotice(n, 5*time.Second); !strings.HasPrefix(got.state, "terminated") {
		t.Fatalf("final NOTIFY: %s", got.state)
	}
	if res := bob.subscribe("alice", 600); res.StatusCode != 481 {
		t.Fatalf("refresh of an ended subscription: %d, want 481", res.StatusCode)
	}
}

// TestPresenceRefused: whoever is not a mutual contact gets one answer,
// whether the account exists or not, and no NOTIFY.
func TestPresenceRefused(t *testing.T) {
	r := presenceRig(t)
	r.account("carol", "tab")
	r.account("dave", "pc")
	r.contact("dave", "alice") // dave lists alice, alice does not list dave
	r.contact("alice", "erin") // alice lists erin, who does not exist
	answers := map[string]string{}
	for _, tc := range []struct{ watcher, dev, target string }{
		{"carol", "tab", "alice"},   // not a contact
		{"dave", "pc", "alice"},     // one-sided
		{"carol", "tab", "nobody"},  // no such account
		{"carol", "tab", "erin"},    // no such account either
		{"carol", "tab", "x@other"}, // another domain
	} {
		d := r.pdev(tc.watcher, tc.dev)
		res := d.subscribe(strings.Split(tc.target, "@")[0], 600)
		answers[tc.watcher+"→"+tc.target] = fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
		time.Sleep(200 * time.Millisecond)
		if len(d.got()) != 0 {
			t.Fatalf("%s got a NOTIFY about %s", tc.watcher, tc.target)
		}
	}
	for k, v := range answers {
		if v != "403 Forbidden" {
			t.Errorf("%s: %s, want 403 Forbidden", k, v)
		}
	}
	if subs, _ := r.p.Presence().Counts(); subs != 0 {
		t.Fatalf("%d subscriptions kept", subs)
	}
}

// TestPresenceContactRemoved: removing a contact ends the watching both
// ways at once, with a final NOTIFY of offline.
func TestPresenceContactRemoved(t *testing.T) {
	r := presenceRig(t)
	bob := r.pdev("bob", "desk")
	laptop := r.pdev("alice", "laptop")
	laptop.register(60)
	bob.register(60)
	bob.subscribe("alice", 600)
	if got := shows(bob.waitNotice(1, 5*time.Second)); got != `online "" [laptop]` {
		t.Fatal(got)
	}
	r.p.EndWatching("alice@"+domain, "bob@"+domain)
	last := bob.waitNotice(2, 5*time.Second)
	if shows(last) != `offline "" []` || last.state != "terminated;reason=rejected" {
		t.Fatalf("final NOTIFY: %s %s", shows(last), last.state)
	}
	if subs, _ := r.p.Presence().Counts(); subs != 0 {
		t.Fatalf("%d subscriptions left", subs)
	}
}

func TestPresenceAnswers(t *testing.T) {
	r := presenceRig(t)
	d := r.pdev("alice", "laptop")
	for _, tc := range []struct {
		name string
		mod  func(*sip.Request)
		want int
	}{
		{"other event", func(q *sip.Request) { q.ReplaceHeader(sip.NewHeader("Event", "dialog")) }, 489},
		{"too brief", func(q *sip.Request) { q.ReplaceHeader(sip.NewHeader("Expires", "5")) }, 423},
		{"bad expires", func(q *sip.Request) { q.ReplaceHeader(sip.NewHeader("Expires", "soon")) }, 400},
		{"other account", func(q *sip.Request) { q.Recipient = d.uri("bob") }, 403},
		{"not pidf", func(q *sip.Request) { ct := sip.ContentTypeHeader("text/plain"); q.ReplaceHeader(&ct) }, 415},
		{"bad document", func(q *sip.Request) { q.SetBody([]byte("<presence/>")) }, 400},
		{"no document", func(q *sip.Request) { q.SetBody(nil); q.RemoveHeader("Content-Type") }, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(sip.PUBLISH, d.uri("alice"))
			from := &sip.FromHeader{Address: d.uri("alice"), Params: sip.NewParams()}
			from.Params.Add("tag", "x")
			req.AppendHeader(from)
			req.AppendHeader(&sip.ToHeader{Address: d.uri("alice"), Params: sip.NewParams()})
			req.AppendHeader(sip.NewHeader("Event", "presence"))
			req.AppendHeader(sip.NewHeader("Expires", "600"))
			ct := sip.ContentTypeHeader(pidf.ContentType)
			req.AppendHeader(&ct)
			req.SetBody([]byte(d.doc(pidf.Away, "")))
			tc.mod(req)
			if res := d.do(req); res.StatusCode != tc.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tc.want)
			}
		})
	}
}

// TestPresenceFetch: Expires 0 on a new SUBSCRIBE is one NOTIFY, and the
// account's own devices see an invisible device as it is.
func TestPresenceFetch(t *testing.T) {
	r := presenceRig(t)
	laptop := r.pdev("alice", "laptop")
	laptop.register(60)
	laptop.publish("", laptop.doc(pidf.Invisible, "quiet"), 600)
	if res := laptop.subscribe("alice", 0); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	n := laptop.waitNotice(1, 5*time.Second)
	if n.doc == nil || len(n.doc.Tuples) != 1 || n.doc.Tuples[0].State != pidf.Invisible || n.doc.Tuples[0].Note != "quiet" || !strings.HasPrefix(n.state, "terminated") {
		t.Fatalf("fetch: %s %s", n.body, n.state)
	}
	if subs, _ := r.p.Presence().Counts(); subs != 0 {
		t.Fatalf("a fetch left %d subscriptions", subs)
	}
}

func TestDeviceInfo(t *testing.T) {
	r, _ := newRig(t, nil)
	c := r.issue("alice@example.org/laptop", nil)
	cert, _ := x509.ParseCertificate(c.Certificate[0])
	info := deviceInfo(c.Certificate[0], "3.1.4, 3.1.3,,")
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	if info.CertHash != hex.EncodeToString(h[:8]) || !info.CertNotBefore.Equal(cert.NotBefore) || strings.Join(info.Caps, " ") != "3.1.4 3.1.3" {
		t.Fatalf("got %+v", info)
	}
	if info := deviceInfo(nil, ""); info.CertHash != "" || info.Caps != nil {
		t.Fatalf("a phone without certificate: %+v", info)
	}
}

// TestPresenceRefreshChecksContacts: a contact removed where the node does
// not see it (the admin command runs in another process) ends the watching
// at the next refresh: 403, and a final NOTIFY of offline.
func TestPresenceRefreshChecksContacts(t *testing.T) {
	r := presenceRig(t)
	bob := r.pdev("bob", "desk")
	laptop := r.pdev("alice", "laptop")
	laptop.register(60)
	bob.register(60)
	bob.subscribe("alice", 600)
	bob.waitNotice(1, 5*time.Second)
	if res := bob.subscribe("alice", 600); res.StatusCode != 200 {
		t.Fatalf("refresh while mutual: %d", res.StatusCode)
	}
	bob.waitNotice(2, 5*time.Second)
	a, _ := r.db.Account(context.Background(), "alice@"+domain)
	if err := r.db.RemoveContact(context.Background(), a.ID, "bob@"+domain); err != nil {
		t.Fatal(err)
	}
	if res := bob.subscribe("alice", 600); res.StatusCode != 403 || res.Reason != "Forbidden" {
		t.Fatalf("refresh after the removal: %d %s", res.StatusCode, res.Reason)
	}
	last := bob.waitNotice(3, 5*time.Second)
	if shows(last) != `offline "" []` || last.state != "terminated;reason=rejected" {
		t.Fatalf("final NOTIFY: %s %s", shows(last), last.state)
	}
	if subs, _ := r.p.Presence().Counts(); subs != 0 {
		t.Fatalf("%d subscriptions left", subs)
	}
}

// TestPresenceWatcherGone: a device that unregisters stops watching, with
// a final NOTIFY; so does one whose registration expires (a revoked
// device's refreshes are refused).
func TestPresenceWatcherGone(t *testing.T) {
	r := presenceRig(t)
	bob := r.pdev("bob", "desk")
	bob.register(60)
	bob.subscribe("alice", 600)
	bob.waitNotice(1, 5*time.Second)
	bob.register(0)
	last := bob.waitNotice(2, 5*time.Second)
	if last.state != "terminated;reason=deactivated" {
		t.Fatalf("final NOTIFY: %s", last.state)
	}
	if subs, _ := r.p.Presence().Counts(); subs != 0 {
		t.Fatalf("%d subscriptions left", subs)
	}
}
