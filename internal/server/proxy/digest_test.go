package proxy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/phonex/phonex/internal/throttle"
)

// oneCredential is an Authenticator with one standard phone, "a.b" with
// password "pw", counting what the proxy reports about its attempts.
type oneCredential struct {
	ha1                []byte
	attempts, verified int
}

func (a *oneCredential) Certificate(context.Context, *x509.Certificate) (Identity, error) {
	return Identity{}, errors.New("no certificates in this test")
}

func (a *oneCredential) SIPCredential(_ context.Context, username string) (Identity, []byte, error) {
	if username != "a.b" {
		return Identity{}, nil, &Refusal{Status: 403, Reason: "Forbidden"}
	}
	return Identity{AccountID: 1, DeviceID: 7, Account: "a@example.org", Device: "phone"}, a.ha1, nil
}

func (a *oneCredential) SIPAttempt(context.Context, int64) error  { a.attempts++; return nil }
func (a *oneCredential) SIPVerified(context.Context, int64) error { a.verified++; return nil }

func digestProxy(t testing.TB, log *slog.Logger) (*Proxy, *oneCredential) {
	auth := &oneCredential{ha1: HA1("a.b", "example.org", "pw")}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pol := throttle.Policy{Free: 3, BaseDelay: time.Minute, MaxDelay: time.Hour, LockAfter: 6}
	return &Proxy{cfg: Config{Domain: "example.org", NonceKey: []byte("k"), Auth: auth}, log: log, guesses: guesses{pol: pol}}, auth
}

func md5hex(s string) string { b := md5.Sum([]byte(s)); return hex.EncodeToString(b[:]) }

// response is what a phone computes for "a.b" (RFC 2617 §3.2.2.1),
// independently of checkDigest: with qop=auth, or the RFC 2069 form.
func response(password, uri, nonce string, nc int, cnonce, qop string) string {
	ha1 := md5hex("a.b:example.org:" + password)
	ha2 := md5hex("MESSAGE:" + uri)
	if qop == "" {
		return md5hex(ha1 + ":" + nonce + ":" + ha2)
	}
	return md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, nonce, nc, cnonce, qop, ha2))
}

// answer is the Authorization header of a phone answering nonce.
func answer(password, uri, nonce string, nc int) string {
	return fmt.Sprintf(`Digest username="a.b", realm="example.org", nonce="%s", uri="%s", qop=auth, nc=%08x, cnonce="cn", response="%s", algorithm=MD5`,
		nonce, uri, nc, response(password, uri, nonce, nc, "cn", "auth"))
}

func digestRequest(src, auth string) *sip.Request {
	req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "x", Host: "example.org"})
	req.SetSource(src)
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	return req
}

func TestDigestURIAndNonceCount(t *testing.T) {
	p, auth := digestProxy(t, nil)
	ctx := context.Background()
	n := p.nonce(time.Now())
	for i, tc := range []struct {
		name   string
		auth   string
		ok     bool
		status int  // when refused outright
		stale  bool // when challenged again
	}{
		{"no credentials", "", false, 0, false},
		{"first use", answer("pw", "sip:x@example.org", n, 1), true, 0, false},
		{"replayed", answer("pw", "sip:x@example.org", n, 1), false, 0, true},
		{"next count", answer("pw", "sip:x@example.org", n, 2), true, 0, false},
		{"count going back", answer("pw", "sip:x@example.org", n, 1), false, 0, true},
		{"uri of another target", answer("pw", "sip:y@example.org", n, 3), false, 400, false},
		{"uri of the node's address", answer("pw", "sip:127.0.0.1:5061", n, 4), false, 400, false},
		{"expired nonce", answer("pw", "sip:x@example.org", p.nonce(time.Now().Add(-nonceLife-time.Second)), 1), false, 0, true},
		{"forged nonce", answer("pw", "sip:x@example.org", strings.Repeat("A", 43), 1), false, 0, true},
		{"wrong password", answer("nope", "sip:x@example.org", n, 5), false, 403, false},
	} {
		id, v := p.verifyDigest(ctx, digestRequest(fmt.Sprintf("192.0.2.%d:5061", i+1), tc.auth))
		switch {
		case tc.ok && id == nil:
			t.Errorf("%s: refused %+v", tc.name, v)
		case !tc.ok && id != nil:
			t.Errorf("%s: accepted", tc.name)
		case !tc.ok && tc.status != 0 && v.status != tc.status:
			t.Errorf("%s: status %d, want %d", tc.name, v.status, tc.status)
		case !tc.ok && tc.status == 0 && (!v.challenge || v.stale != tc.stale):
			t.Errorf("%s: %+v, want a challenge (stale=%v)", tc.name, v, tc.stale)
		}
	}
	// Attempts counted for the device: the 2 right answers, the 2 replayed
	// ones and the wrong password (forged, expired and uri-mismatched
	// answers are refused before the device's counter is read).
	if auth.verified != 2 || auth.attempts != 5 {
		t.Fatalf("verified %d attempts %d, want 2 and 5", auth.verified, auth.attempts)
	}
}

// TestDigestThrottle: wrong answers from one source are free up to the
// policy's limit, then wait; the failures are logged once per burst with
// the source and the account.
func TestDigestThrottle(t *testing.T) {
	var logs bytes.Buffer
	p, auth := digestProxy(t, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	n := p.nonce(time.Now())
	var statuses []int
	for i := 1; i <= 50; i++ {
		_, v := p.verifyDigest(ctx, digestRequest("198.51.100.7:40000", answer(fmt.Sprint("guess", i), "sip:x@example.org", n, i)))
		statuses = append(statuses, v.status)
		if v.status == 503 && v.retryAfter <= 0 {
			t.Fatal("503 without Retry-After")
		}
	}
	if fmt.Sprint(statuses[:4]) != "[403 403 403 503]" {
		t.Fatalf("answers %v", statuses)
	}
	if auth.attempts != 3 {
		t.Fatalf("%d attempts reached the device's counter, want 3 (the rest were not checked)", auth.attempts)
	}
	// The right password is not even checked while the source waits.
	if id, v := p.verifyDigest(ctx, digestRequest("198.51.100.7:40001", answer("pw", "sip:x@example.org", n, 60))); id != nil || v.status != 503 {
		t.Fatalf("during the wait: %v %+v", id, v)
	}
	// Another source is not held up.
	if id, v := p.verifyDigest(ctx, digestRequest("198.51.100.8:40000", answer("pw", "sip:x@example.org", n, 61))); id == nil {
		t.Fatalf("other source: %+v", v)
	}
	lines := strings.Count(logs.String(), "sip digest authentication failed")
	if lines != 1 || !strings.Contains(logs.String(), "source=198.51.100.7") || !strings.Contains(logs.String(), "account=a.b") {
		t.Fatalf("%d log lines:\n%s", lines, logs.String())
	}
}

// FuzzDigest runs the proxy's real digest check on arbitrary
// Authorization headers: nothing but the right response verifies.
func FuzzDigest(f *testing.F) {
	p, _ := digestProxy(f, nil)
	n := p.nonce(time.Now())
	f.Add(answer("pw", "sip:x@example.org", n, 1))
	f.Add(answer("pw", "sip:x@example.org", n, 2))
	f.Add(answer("wrong", "sip:x@example.org", n, 3))
	f.Add(answer("pw", "sip:y@example.org", n, 4))
	f.Add(`Digest username="a.b", realm="example.org", nonce="n", uri="sip:x@example.org", qop=auth, nc=00000001, cnonce="c", response="00"`)
	f.Add(`Digest username="a"`)
	f.Add(`Digest username="a.b", realm="example.org", nonce="` + n + `", uri="sip:x@example.org", response="00"`)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, h string) {
		// A fresh source each time, so the throttle does not hide the check.
		p.guesses = guesses{pol: p.guesses.pol}
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
		want := response("pw", cr.URI, cr.Nonce, cr.Nc, cr.Cnonce, cr.QOP)
		if cr.Username != "a.b" || strings.ToLower(cr.Response) != want {
			t.Fatalf("accepted %q", h)
		}
	})
}
