package dnsval

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnszone"
)

// TestZSKRollover walks a pre-publication rollover (RFC 6781 §4.1.1.1) and
// checks at every step that answers validate both with the keys a cache
// holds from the step before and with fresh ones: no validation gap.
func TestZSKRollover(t *testing.T) {
	f := newFixture(t, dnszone.ECDSAP256)
	ctx := context.Background()
	alice := "2.2.2.1.1.1.0.0.9.1.2.4.e164." + origin
	cachingResolver := f.resolver()

	type step struct {
		keys   []*dns.DNSKEY
		answer *dns.Msg
	}
	var steps []step
	check := func(label string) {
		t.Helper()
		now := f.clock.Now()
		cur := step{keys: f.keys(t), answer: f.reply(alice, dns.TypeNAPTR)}
		// Fresh keys, fresh answer.
		if _, err := Validate(cur.answer, alice, dns.TypeNAPTR, origin, cur.keys, now); err != nil {
			t.Fatalf("%s: fresh: %v", label, err)
		}
		if len(steps) > 0 {
			prev := steps[len(steps)-1]
			// A cache holding the previous DNSKEY RRset meets a new answer.
			if _, err := Validate(cur.answer, alice, dns.TypeNAPTR, origin, prev.keys, now); err != nil {
				t.Fatalf("%s: cached keys, new answer: %v", label, err)
			}
			// A cache holding the previous answer meets the new keys.
			if _, err := Validate(prev.answer, alice, dns.TypeNAPTR, origin, cur.keys, now); err != nil {
				t.Fatalf("%s: new keys, cached answer: %v", label, err)
			}
		}
		if _, err := cachingResolver.SIPAddress(ctx, "+421900111222"); err != nil {
			t.Fatalf("%s: resolver: %v", label, err)
		}
		steps = append(steps, cur)
	}
	check("start")
	active0, _, _ := f.zone.RolloverState()

	next, err := dnszone.GenerateKey(origin, dnszone.ECDSAP256, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.zone.PrepublishZSK(next); err != nil {
		t.Fatal(err)
	}
	check("pre-published")
	if err := f.zone.ActivateZSK(); !errors.Is(err, dnszone.ErrTooEarly) {
		t.Fatalf("activate at once: %v, want too early", err)
	}
	f.clock.t = f.clock.t.Add(dnszone.DNSKEYTTL * time.Second)
	check("published for a DNSKEY TTL")

	before := f.zone.Signatures()
	if err := f.zone.ActivateZSK(); err != nil {
		t.Fatal(err)
	}
	if active, _, old := f.zone.RolloverState(); active != next.Tag() || old != active0 {
		t.Fatalf("state after activation: active %d old %d", active, old)
	}
	if f.zone.Signatures() == before {
		t.Fatal("activation re-signed nothing")
	}
	if s := f.reply(alice, dns.TypeNAPTR).Answer[1].(*dns.RRSIG); s.KeyTag != next.Tag() {
		t.Fatalf("answer signed by %d, want the new key %d", s.KeyTag, next.Tag())
	}
	check("new key signing")
	if err := f.zone.RetireZSK(); !errors.Is(err, dnszone.ErrTooEarly) {
		t.Fatalf("retire at once: %v, want too early", err)
	}
	f.clock.t = f.clock.t.Add(dnszone.DNSKEYTTL * time.Second)
	check("old signatures expired from caches")
	if err := f.zone.RetireZSK(); err != nil {
		t.Fatal(err)
	}
	if n := len(f.zone.DNSKEYs()); n != 2 {
		t.Fatalf("%d keys after retirement, want 2", n)
	}
	check("old key retired")
	// The old key is gone: an answer it signed no longer validates.
	if _, err := Validate(steps[0].answer, alice, dns.TypeNAPTR, origin, steps[len(steps)-1].keys, f.clock.Now()); !errors.Is(err, ErrBogus) {
		t.Fatalf("answer by the retired key: %v, want bogus", err)
	}
}
