package proxy

import (
	"bytes"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/store"
)

const directMessage = "MESSAGE sip:bravo@example.org SIP/2.0\r\n" +
	"Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK.b2;rport\r\n" +
	"Via: SIP/2.0/TLS 10.0.0.2:5061;branch=z9hG4bK.b1\r\n" +
	"Max-Forwards: 70\r\n" +
	"From: \"Alpha\" <sip:alpha@example.org>;tag=abc\r\n" +
	"To: <sip:bravo@example.org>\r\n" +
	"Call-ID: c1@10.0.0.1\r\n" +
	"CSeq: 7 MESSAGE\r\n" +
	"Content-Type: application/vnd.phonex.envelope\r\n" +
	"Content-Length: 5\r\n\r\nhello"

// directLines frames msg as the connection's reader does.
func directLines(t testing.TB, msg string) []string {
	t.Helper()
	n, lines, _, err := frameLines([]byte(msg))
	if err != nil || n != len(msg) {
		t.Fatalf("frame: %d of %d, %v", n, len(msg), err)
	}
	return lines
}

func directProxy() *Proxy {
	return &Proxy{cfg: Config{Domain: domain}, tags: newIDs()}
}

// TestParseDirect: the node's own path takes a device's MESSAGE in the
// shapes it understands whole, and leaves every other to sipgo.
func TestParseDirect(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(string) string
		take bool
		from string
	}{
		{"plain", func(s string) string { return s }, true, "alpha@example.org"},
		{"compact forms", func(s string) string {
			for _, r := range [][2]string{{"Via:", "v:"}, {"From:", "f:"}, {"To:", "t:"}, {"Call-ID:", "i:"}, {"Content-Type:", "c:"}} {
				s = strings.ReplaceAll(s, r[0], r[1])
			}
			return s
		}, true, "alpha@example.org"},
		{"From of another domain: taken, refused later", func(s string) string {
			return strings.Replace(s, "sip:alpha@example.org", "sip:alpha@elsewhere.net", 1)
		}, true, ""},
		{"recipient of another domain", func(s string) string {
			return strings.Replace(s, "MESSAGE sip:bravo@example.org", "MESSAGE sip:bravo@elsewhere.net", 1)
		}, false, ""},
		{"Route", func(s string) string {
			return strings.Replace(s, "Max-Forwards: 70\r\n", "Route: <sip:x.example.org;lr>\r\n", 1)
		}, false, ""},
		{"Require", func(s string) string { return strings.Replace(s, "Max-Forwards: 70\r\n", "Require: foo\r\n", 1) }, false, ""},
		{"Max-Forwards 0", func(s string) string { return strings.Replace(s, "Max-Forwards: 70", "Max-Forwards: 0", 1) }, false, ""},
		{"folded line", func(s string) string { return strings.Replace(s, "CSeq: 7 MESSAGE\r\n", "CSeq: 7\r\n MESSAGE\r\n", 1) }, false, ""},
		{"two From", func(s string) string { return strings.Replace(s, "To:", "From: <sip:x@example.org>;tag=2\r\nTo:", 1) }, false, ""},
		{"no Call-ID", func(s string) string { return strings.Replace(s, "Call-ID: c1@10.0.0.1\r\n", "", 1) }, false, ""},
		{"no Via", func(s string) string {
			s = strings.Replace(s, "Via: SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK.b2;rport\r\n", "", 1)
			return strings.Replace(s, "Via: SIP/2.0/TLS 10.0.0.2:5061;branch=z9hG4bK.b1\r\n", "", 1)
		}, false, ""},
		{"bad From", func(s string) string { return strings.Replace(s, "\"Alpha\" <sip:alpha@example.org>", "<<>", 1) }, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := directProxy()
			c := &peerConn{cert: &x509.Certificate{}}
			m, ok := p.parseDirect(c, directLines(t, tc.edit(directMessage)))
			if ok != tc.take {
				t.Fatalf("taken %v, want %v", ok, tc.take)
			}
			if !ok {
				return
			}
			if m.from != tc.from || m.to.String() != "bravo@example.org" || m.ctype != EnvelopeType {
				t.Fatalf("from %q to %q type %q", m.from, m.to, m.ctype)
			}
		})
	}
}

// TestDirectResponse: the answer copies Via (in order), From, Call-ID and
// CSeq, tags the To, and parses as SIP.
func TestDirectResponse(t *testing.T) {
	p := directProxy()
	m, ok := p.parseDirect(&peerConn{cert: &x509.Certificate{}}, directLines(t, directMessage))
	if !ok {
		t.Fatal("not taken")
	}
	out := m.response(reply{code: 503, reason: "Rate limit exceeded", hdrs: []sip.Header{sip.NewHeader("Retry-After", "2")}}, p.tags)
	if n, err := frame(out); err != nil || n != len(out) {
		t.Fatalf("the answer does not frame: %v\n%s", err, out)
	}
	msg, err := sip.ParseMessage(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	res, ok := msg.(*sip.Response)
	if !ok || res.StatusCode != 503 || res.Reason != "Rate limit exceeded" {
		t.Fatalf("%s", out)
	}
	vias := res.GetHeaders("Via")
	if len(vias) != 2 || !strings.Contains(vias[0].Value(), "z9hG4bK.b2") || !strings.Contains(vias[1].Value(), "z9hG4bK.b1") {
		t.Fatalf("Via %v", vias)
	}
	if res.CallID().Value() != "c1@10.0.0.1" || res.CSeq().Value() != "7 MESSAGE" || res.From().Params.GetOr("tag", "") != "abc" {
		t.Fatalf("%s", out)
	}
	if tag, _ := res.To().Params.Get("tag"); tag == "" {
		t.Fatalf("To without a tag: %s", out)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "2" {
		t.Fatalf("%s", out)
	}
	// A To tagged already keeps its tag alone.
	m, _ = p.parseDirect(&peerConn{cert: &x509.Certificate{}}, directLines(t, strings.Replace(directMessage, "To: <sip:bravo@example.org>", "To: <sip:bravo@example.org>;tag=t1", 1)))
	if out := string(m.response(reply{code: 200, reason: "OK"}, p.tags)); !strings.Contains(out, "\r\nTo: <sip:bravo@example.org>;tag=t1\r\n") {
		t.Fatalf("%s", out)
	}
}

// TestDirectRequest: the node's own MESSAGE to a device carries what the
// sipgo path sent, parses as SIP, and every one has its own branch, tag
// and Call-ID.
func TestDirectRequest(t *testing.T) {
	p := directProxy()
	b := binding{contact: sip.Uri{Scheme: "sip", User: "bravo", Host: "10.0.0.9", Port: 5061}, source: "10.0.0.9:40000"}
	d := store.Delivery{Message: store.Message{Sender: "alpha@example.org", SenderDevice: "a1", Recipient: "bravo@example.org",
		ContentType: EnvelopeType, Body: []byte("sealed"), Created: time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)}}
	seen := map[string]bool{}
	for range 2 {
		branch := "z9hG4bK" + p.tags.next()
		out := p.directRequest(b, d, branch, "10.0.0.1:5061")
		if n, err := frame(out); err != nil || n != len(out) {
			t.Fatalf("does not frame: %v\n%s", err, out)
		}
		msg, err := sip.ParseMessage(out)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		req := msg.(*sip.Request)
		if req.Method != sip.MESSAGE || req.Recipient.Host != "10.0.0.9" || req.Recipient.User != "bravo" {
			t.Fatalf("%s", out)
		}
		if req.From().Address.User != "alpha" || req.From().Address.Host != domain || req.To().Address.User != "bravo" {
			t.Fatalf("%s", out)
		}
		if h := req.GetHeader("P-Asserted-Identity"); h == nil || h.Value() != "<sip:alpha@example.org;gr=a1>" {
			t.Fatalf("%s", out)
		}
		if h := req.GetHeader("Date"); h == nil || h.Value() != "Mon, 04 May 2026 03:02:01 UTC" {
			t.Fatalf("%s", out)
		}
		if string(req.Body()) != "sealed" || req.ContentType().Value() != EnvelopeType || req.CSeq().Value() != "1 MESSAGE" {
			t.Fatalf("%s", out)
		}
		via := req.Via()
		if got, _ := via.Params.Get("branch"); got != branch {
			t.Fatalf("branch %q, want %q", got, branch)
		}
		// The node's end of the connection, where a phone that answers
		// to the sent-by finds the same connection.
		if _, rport := via.Params.Get("rport"); via.Host != "10.0.0.1" || via.Port != 5061 || !rport {
			t.Fatalf("Via %s, want sent-by 10.0.0.1:5061 with rport", via.Value())
		}
		tag, _ := req.From().Params.Get("tag")
		for _, id := range []string{branch, tag, req.CallID().Value()} {
			if id == "" || seen[id] {
				t.Fatalf("%q empty or used twice", id)
			}
			seen[id] = true
		}
	}
}

// TestDirectAnswered: a device's answer reaches the MESSAGE waiting for
// it by the branch of the node's Via on that connection; provisional
// answers are taken but wait on; anything else goes on to sipgo.
func TestDirectAnswered(t *testing.T) {
	c := &peerConn{}
	ch, ok := c.await("z9hG4bKn1")
	if !ok {
		t.Fatal("await refused")
	}
	answer := func(code, via string) []string {
		return directLines(t, "SIP/2.0 "+code+" Whatever\r\n"+via+"\r\nFrom: <sip:a@example.org>;tag=1\r\nTo: <sip:b@example.org>;tag=2\r\n"+
			"Call-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n")
	}
	if c.answered(answer("200", "Via: SIP/2.0/TLS example.org;branch=z9hG4bKother")) {
		t.Fatal("an unknown branch was taken")
	}
	if !c.answered(answer("100", "v: SIP/2.0/TLS example.org;BRANCH=z9hG4bKn1")) {
		t.Fatal("a provisional answer was not taken")
	}
	select {
	case code := <-ch:
		t.Fatalf("provisional %d passed on as final", code)
	default:
	}
	if !c.answered(answer("480", "Via: SIP/2.0/TLS example.org;branch=z9hG4bKn1 , SIP/2.0/TLS other.org;branch=z9hG4bKx")) {
		t.Fatal("the final answer was not taken")
	}
	if code := <-ch; code != 480 {
		t.Fatalf("code %d", code)
	}
	if c.answered(answer("200", "Via: SIP/2.0/TLS example.org;branch=z9hG4bKn1")) {
		t.Fatal("a second final answer was taken")
	}
	// Closing tells whoever still waits.
	ch, _ = c.await("z9hG4bKn2")
	c.endWaits()
	if code := <-ch; code != 0 {
		t.Fatalf("code %d after close", code)
	}
	if _, ok := c.await("z9hG4bKn3"); ok {
		t.Fatal("await on a closed connection")
	}
}

// TestDirectPathRelays: a device's MESSAGE goes through the node's own
// path end to end: the receiver has it with the sender's identity, the
// sender the 200, and a From that is not the device's own gets 403.
func TestDirectPathRelays(t *testing.T) {
	r, _ := newRig(t, nil)
	r.account("alpha", "a1")
	r.account("bravo", "b1")
	r.friends("alpha", "bravo")
	a1, b1 := r.dev("alpha", "a1"), r.dev("bravo", "b1")
	if res := b1.register(60); res.StatusCode != 200 {
		t.Fatalf("register: %d", res.StatusCode)
	}
	waitIdle(t, r, "bravo", "b1")
	if res := a1.send("bravo", "hi"); res.StatusCode != 200 {
		t.Fatalf("send: %d %s", res.StatusCode, res.Reason)
	}
	if got := b1.received(); len(got) != 1 || got[0].from != "alpha" || got[0].body != "hi" {
		t.Fatalf("bravo got %+v", got)
	}
	if res := a1.sendAs("bravo", "bravo", EnvelopeType, []byte("forged")); res.StatusCode != 403 {
		t.Fatalf("a forged From: %d %s", res.StatusCode, res.Reason)
	}
	if n := r.p.direct.Load(); n != 2 {
		t.Fatalf("the node's own path took %d MESSAGEs, want 2", n)
	}
}

func FuzzDirect(f *testing.F) {
	f.Add([]byte(directMessage))
	f.Add([]byte(strings.ReplaceAll(directMessage, "Via:", "v:")))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS example.org;branch=z9hG4bKn1\r\nFrom: <sip:a@example.org>;tag=1\r\n" +
		"To: <sip:b@example.org>;tag=2\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, lines, _, err := frameLines(b)
		if err != nil {
			return
		}
		c := &peerConn{cert: &x509.Certificate{}}
		if bytes.HasPrefix(b, []byte("SIP/")) {
			ch, _ := c.await("z9hG4bKn1")
			if c.answered(lines) {
				select {
				case code := <-ch:
					if code < 200 {
						t.Fatalf("final answer %d", code)
					}
				default:
				}
			}
			return
		}
		p := directProxy()
		m, ok := p.parseDirect(c, lines)
		if !ok {
			return
		}
		// What the node answers must be one whole SIP message that
		// echoes the request's Call-ID.
		out := m.response(reply{code: 200, reason: "OK"}, p.tags)
		if k, err := frame(out); err != nil || k != len(out) {
			t.Fatalf("answer to %q does not frame: %v\n%q", b[:n], err, out)
		}
		if !bytes.Contains(out, []byte("Content-Length: 0\r\n\r\n")) {
			t.Fatalf("%q", out)
		}
	})
}
