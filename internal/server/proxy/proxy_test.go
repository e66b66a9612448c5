package proxy

import (
	"errors"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// RFC 2617 §3.5's worked example.
func TestDigestRFC2617(t *testing.T) {
	cr, err := digest.ParseCredentials(`Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`)
	if err != nil {
		t.Fatal(err)
	}
	ha1 := HA1("Mufasa", "testrealm@host.com", "Circle Of Life")
	if err := checkDigest(cr, "GET", ha1); err != nil {
		t.Fatalf("RFC example: %v", err)
	}
	if err := checkDigest(cr, "POST", ha1); !errors.Is(err, errDigest) {
		t.Fatalf("other method: %v", err)
	}
	if err := checkDigest(cr, "GET", HA1("Mufasa", "testrealm@host.com", "wrong")); !errors.Is(err, errDigest) {
		t.Fatalf("wrong password: %v", err)
	}
	cr.QOP = "auth-int"
	if err := checkDigest(cr, "GET", ha1); err == nil {
		t.Fatal("auth-int accepted")
	}
}

func TestNonce(t *testing.T) {
	p := &Proxy{cfg: Config{NonceKey: []byte("k")}}
	now := time.Now()
	n := p.nonce(now)
	if !p.nonceValid(n, now.Add(time.Minute)) {
		t.Fatal("fresh nonce refused")
	}
	if p.nonceValid(n, now.Add(nonceLife+time.Second)) {
		t.Fatal("stale nonce accepted")
	}
	other := &Proxy{cfg: Config{NonceKey: []byte("other")}}
	if other.nonceValid(n, now) {
		t.Fatal("nonce of another key accepted")
	}
	for _, bad := range []string{"", "x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if p.nonceValid(bad, now) {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(10, 3)
	t0 := time.Unix(100, 0)
	for i := 0; i < 3; i++ {
		if w := l.take("a", t0); w != 0 {
			t.Fatalf("burst %d: wait %v", i, w)
		}
	}
	if w := l.take("a", t0); w <= 0 || w > 100*time.Millisecond {
		t.Fatalf("over burst: wait %v", w)
	}
	if w := l.take("b", t0); w != 0 {
		t.Fatal("accounts share a bucket")
	}
	if w := l.take("a", t0.Add(200*time.Millisecond)); w != 0 {
		t.Fatalf("after refill: wait %v", w)
	}
	// Two requests read the clock, and the later one took the lock first:
	// the earlier one is not charged for the 100 ms between them.
	l = newLimiter(10, 2)
	l.take("c", t0)
	if w := l.take("c", t0.Add(time.Second)); w != 0 {
		t.Fatalf("refilled bucket: wait %v", w)
	}
	if w := l.take("c", t0.Add(900*time.Millisecond)); w != 0 {
		t.Fatalf("a request stamped before the last one: wait %v with a token left", w)
	}
}
