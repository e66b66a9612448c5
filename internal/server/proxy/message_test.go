package proxy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/siplimit"
	"github.com/phonex/phonex/internal/store"
)

// Every refusal of a MESSAGE is a specific answer, and a 200 means a copy
// was stored for the recipient.
func TestMessageAnswers(t *testing.T) {
	r, fs := newRig(t, nil)
	r.account("alpha", "a1", "a2")
	r.account("bravo", "b1")
	r.account("dave", "d1")
	r.account("erin", "e1")
	r.account("phil", "phone1")
	r.account("gone", "g1")
	r.friends("alpha", "bravo")
	r.friends("alpha", "phil")
	r.friends("alpha", "gone")
	r.contact("dave", "alpha") // alpha has not listed dave
	if err := r.db.SetDeviceStatus(context.Background(), r.deviceID("gone", "g1"), store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	a1 := r.dev("alpha", "a1")

	tests := []struct {
		name   string
		from   string
		to     string
		ctype  string
		body   []byte
		code   int
		reason string
		fail   string // a store call that fails
	}{
		{name: "accepted", to: "bravo", body: []byte("hi"), code: 200},
		{name: "body at the limit", to: "bravo", body: filler(siplimit.MaxBody), code: 200},
		{name: "body over the limit, under the SIP cap", to: "bravo", body: filler(siplimit.MaxBody + 1), code: 513},
		{name: "empty", to: "bravo", body: nil, code: 400},
		{name: "From is someone else", from: "bravo", to: "bravo", body: []byte("x"), code: 403, reason: "From"},
		{name: "unknown recipient", to: "nobody", body: []byte("x"), code: 404},
		{name: "recipient has not listed the sender", to: "erin", body: []byte("x"), code: 403, reason: "not on the recipient's contact list"},
		{name: "sender has not listed the recipient", to: "dave", body: []byte("x"), code: 403, reason: "you have not added the recipient"},
		{name: "encrypted to standard phones only", to: "phil", body: []byte("x"), code: 488},
		{name: "plain text to standard phones", to: "phil", ctype: "text/plain", body: []byte("x"), code: 200},
		{name: "every device revoked", to: "gone", body: []byte("x"), code: 480, reason: "no active device"},
		{name: "contact check fails", to: "bravo", body: []byte("x"), code: 500, fail: "HasContact"},
		{name: "storing fails", to: "bravo", body: []byte("x"), code: 500, fail: "EnqueueMessage"},
		{name: "account lookup fails", to: "bravo", body: []byte("x"), code: 500, fail: "Account"},
		{name: "device lookup fails", to: "bravo", body: []byte("x"), code: 500, fail: "Devices"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fail != "" {
				// The store is read again only for routes not cached.
				r.p.routes.forget()
				fs.set(tc.fail, errDisk)
				defer fs.set(tc.fail, nil)
			}
			from, ctype := "alpha", EnvelopeType
			if tc.from != "" {
				from = tc.from
			}
			if tc.ctype != "" {
				ctype = tc.ctype
			}
			before := r.storedOr0(tc.to)
			res := a1.sendAs(from, tc.to, ctype, tc.body)
			if res.StatusCode != tc.code || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("answer %d %q, want %d with %q", res.StatusCode, res.Reason, tc.code, tc.reason)
			}
			after := r.storedOr0(tc.to)
			if stored := after > before; stored != (tc.code == 200) {
				t.Fatalf("answer %d, stored for the recipient %d -> %d bytes", tc.code, before, after)
			}
		})
	}
}

// filler is a body of n bytes. Not zeros: sipgo's stream reader skips a
// read that holds only NUL bytes, so an all-zero body can stall.
func filler(n int) []byte { return bytes.Repeat([]byte("x"), n) }

func (r *rig) storedOr0(account string) int64 {
	if _, err := r.db.Account(context.Background(), account+"@"+domain); err != nil {
		return 0
	}
	return r.stored(account)
}

func TestRateLimit(t *testing.T) {
	r, _ := newRig(t, func(c *Config) { c.Rate, c.Burst = 0.5, 2 })
	r.account("alpha", "a1")
	r.account("bravo", "b1")
	r.friends("alpha", "bravo")
	a1 := r.dev("alpha", "a1")
	for i := 0; i < 2; i++ {
		if res := a1.send("bravo", "x"); res.StatusCode != 200 {
			t.Fatalf("within the burst: %d %s", res.StatusCode, res.Reason)
		}
	}
	res := a1.send("bravo", "x")
	if res.StatusCode != 503 {
		t.Fatalf("over the rate: %d %s", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("Retry-After"); h == nil || h.Value() != "2" {
		t.Fatalf("Retry-After %v, want 2", h)
	}
}

// Copies for the recipient and for the sender's own other devices are
// both checked against the storage limit.
func TestStorageFull(t *testing.T) {
	r, _ := newRig(t, func(c *Config) { c.MaxStored = 3000 })
	r.account("alpha", "a1", "a2", "a3")
	r.account("bravo", "b1")
	r.account("carol", "c1")
	r.friends("alpha", "bravo")
	r.friends("carol", "bravo")
	a1, c1 := r.dev("alpha", "a1"), r.dev("carol", "c1")
	body := filler(1000)
	// alpha's a2 and a3 are offline: each message holds 2000 bytes of alpha's.
	if res := a1.sendAs("alpha", "bravo", EnvelopeType, body); res.StatusCode != 200 {
		t.Fatalf("first: %d %s", res.StatusCode, res.Reason)
	}
	res := a1.sendAs("alpha", "bravo", EnvelopeType, body)
	if res.StatusCode != 480 || !strings.Contains(res.Reason, "Your storage is full") {
		t.Fatalf("sender's own copies over the limit: %d %s", res.StatusCode, res.Reason)
	}
	if got := r.stored("alpha"); got != 2000 {
		t.Fatalf("alpha holds %d bytes, want 2000", got)
	}
	// bravo holds 1000; two more fit, the third does not.
	for i := 0; i < 2; i++ {
		if res := c1.sendAs("carol", "bravo", EnvelopeType, body); res.StatusCode != 200 {
			t.Fatalf("carol %d: %d %s", i, res.StatusCode, res.Reason)
		}
	}
	res = c1.sendAs("carol", "bravo", EnvelopeType, body)
	if res.StatusCode != 480 || !strings.Contains(res.Reason, "Recipient storage full") {
		t.Fatalf("recipient over the limit: %d %s", res.StatusCode, res.Reason)
	}
	if h := res.GetHeader("Retry-After"); h == nil {
		t.Fatal("no Retry-After")
	}
	// Concurrent senders cannot overshoot between check and insert.
	r.account("dora", "d1")
	r.account("eve", "e1")
	r.friends("dora", "eve")
	d1 := r.dev("dora", "d1")
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := d1.sendAs("dora", "eve", EnvelopeType, body)
			mu.Lock()
			codes[res.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200] != 3 || codes[480] != 5 || r.stored("eve") != 3000 {
		t.Fatalf("concurrent: answers %v, eve holds %d bytes", codes, r.stored("eve"))
	}
}

// A copy the device defers (5xx, 480) stays on the node and is retried with
// backoff until the device takes it; a copy it refuses for good (4xx) is
// dropped and does not block the ones behind it.
func TestDeliveryRetry(t *testing.T) {
	for _, code := range []int{500, 503, 480, 408} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			r, _ := newRig(t, nil)
			r.account("alpha", "a1")
			r.account("bravo", "b1")
			r.friends("alpha", "bravo")
			a1, b1 := r.dev("alpha", "a1"), r.dev("bravo", "b1")
			var mu sync.Mutex
			tries := map[string]int{}
			b1.answer = func(body string) int {
				mu.Lock()
				defer mu.Unlock()
				tries[body]++
				if body == "first" && tries[body] <= 2 {
					return code
				}
				return 200
			}
			if res := b1.register(60); res.StatusCode != 200 {
				t.Fatalf("register: %d", res.StatusCode)
			}
			for _, s := range []string{"first", "second"} {
				if res := a1.send("bravo", s); res.StatusCode != 200 {
					t.Fatalf("send: %d %s", res.StatusCode, res.Reason)
				}
			}
			waitUntil(t, "delivery after the device's refusals", 10*time.Second, func() bool { return len(b1.received()) == 2 })
			if got := b1.bodies(); got[0] != "first" || got[1] != "second" {
				t.Fatalf("order %q", got)
			}
			mu.Lock()
			if tries["first"] != 3 || tries["second"] != 1 {
				t.Fatalf("attempts %v", tries)
			}
			mu.Unlock()
			waitUntil(t, "copies forgotten", 5*time.Second, func() bool { return r.stored("bravo") == 0 })
		})
	}
	t.Run("400 drops", func(t *testing.T) {
		r, _ := newRig(t, nil)
		r.account("alpha", "a1")
		r.account("bravo", "b1")
		r.friends("alpha", "bravo")
		a1, b1 := r.dev("alpha", "a1"), r.dev("bravo", "b1")
		b1.answer = func(body string) int {
			if body == "garbage" {
				return 400
			}
			return 200
		}
		b1.register(60)
		a1.send("bravo", "garbage")
		a1.send("bravo", "after")
		waitUntil(t, "the copy behind a refused one", 5*time.Second, func() bool { return len(b1.received()) == 1 })
		waitUntil(t, "refused copy forgotten", 5*time.Second, func() bool { return r.stored("bravo") == 0 })
	})
}

func TestRegistrationExpiry(t *testing.T) {
	r, _ := newRig(t, nil)
	r.account("alpha", "a1")
	a1 := r.dev("alpha", "a1")
	id := r.deviceID("alpha", "a1")
	bound := func() bool {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		return r.p.bindings[id] != nil
	}
	res := a1.register(1)
	if res.StatusCode != 200 || !r.p.Registered(id) {
		t.Fatalf("register: %d", res.StatusCode)
	}
	if c := res.Contact(); c == nil || !strings.Contains(c.Value(), "expires=1") {
		t.Fatalf("contact in the answer: %v", c)
	}
	waitUntil(t, "the sweep to drop the expired binding", 3*time.Second, func() bool { return !bound() })
	if r.p.Registered(id) {
		t.Fatal("expired binding still registered")
	}
	// An explicit unregister drops it at once; a huge Expires is capped.
	res = a1.register(1 << 20)
	if c := res.Contact(); c == nil || !strings.Contains(c.Value(), fmt.Sprintf("expires=%d", maxExpires)) {
		t.Fatalf("capped expiry: %v", c)
	}
	a1.register(0)
	if bound() {
		t.Fatal("unregister left the binding")
	}
}

// One sender's backlog does not delay another sender's message: it comes
// in the first turn, however long the backlog.
func TestFairDelivery(t *testing.T) {
	for _, backlog := range []int{30, 300} {
		t.Run(fmt.Sprint(backlog), func(t *testing.T) {
			r, _ := newRig(t, func(c *Config) { c.Rate, c.Burst = 1e6, 1e6 })
			r.account("alpha", "a1")
			r.account("bravo", "b1")
			r.account("carol", "c1")
			r.friends("alpha", "bravo")
			r.friends("carol", "bravo")
			a1, b1, c1 := r.dev("alpha", "a1"), r.dev("bravo", "b1"), r.dev("carol", "c1")
			for i := 0; i < backlog; i++ {
				if res := a1.send("bravo", fmt.Sprintf("a%03d", i)); res.StatusCode != 200 {
					t.Fatalf("flood: %d", res.StatusCode)
				}
			}
			if res := c1.send("bravo", "carol"); res.StatusCode != 200 {
				t.Fatalf("carol: %d", res.StatusCode)
			}
			b1.delay = 2 * time.Millisecond
			b1.register(60)
			waitUntil(t, "carol's message", 10*time.Second, func() bool {
				for _, s := range b1.bodies() {
					if s == "carol" {
						return true
					}
				}
				return false
			})
			pos := -1
			var as []string
			for i, s := range b1.bodies() {
				if s == "carol" {
					pos = i
				} else {
					as = append(as, s)
				}
			}
			if pos > 1 {
				t.Fatalf("carol's message came after %d of alpha's", pos)
			}
			waitUntil(t, "the backlog", 20*time.Second, func() bool { return len(b1.received()) == backlog+1 })
			as = nil
			for _, s := range b1.bodies() {
				if s != "carol" {
					as = append(as, s)
				}
			}
			for i, s := range as {
				if s != fmt.Sprintf("a%03d", i) {
					t.Fatalf("alpha's order broken at %d: %q", i, s)
				}
			}
		})
	}
}

// The same with the device online while one sender floods it: another
// sender's message waits at most for the batch being delivered, not for
// the flood.
//
// The device holds one delivery in the middle of the stream while the
// other sender's message is stored, so what it waits for is counted from
// the moment it was stored, however fast the machine sends or delivers.
func TestFairDeliveryOnline(t *testing.T) {
	r, _ := newRig(t, func(c *Config) { c.Rate, c.Burst = 1e6, 1e6 })
	r.account("alpha", "a1")
	r.account("bravo", "b1")
	r.account("carol", "c1")
	r.friends("alpha", "bravo")
	r.friends("carol", "bravo")
	a1, b1, c1 := r.dev("alpha", "a1"), r.dev("bravo", "b1"), r.dev("carol", "c1")
	flood := func(from, to int) {
		var wg sync.WaitGroup
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := from + w; i < to; i += 4 {
					a1.send("bravo", fmt.Sprintf("a%03d", i))
				}
			}(w)
		}
		wg.Wait()
	}
	// Most of the flood is stored before the device comes online, so the
	// backlog is long whatever the machine's speed; the rest goes on
	// while it is delivered.
	const stored, flood2 = 300, 100
	flood(0, stored)
	const holdAt = 20
	held, release := make(chan struct{}), make(chan struct{})
	var answers int
	b1.mu.Lock()
	b1.delay = 10 * time.Millisecond
	b1.answer = func(string) int {
		// Deliveries to a device are sequential: no lock needed for answers.
		if answers++; answers == holdAt+1 {
			close(held)
			<-release
		}
		return 200
	}
	b1.mu.Unlock()
	more := make(chan struct{})
	go func() { flood(stored, stored+flood2); close(more) }()
	b1.register(60)
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		close(release)
		t.Fatalf("the device got %d of alpha's %d messages in 60 s", len(b1.received()), stored)
	}
	// A page of alpha's copies is being delivered: the device holds its
	// answer to the copy after the first holdAt.
	if res := c1.send("bravo", "carol"); res.StatusCode != 200 {
		close(release)
		t.Fatalf("carol: %d", res.StatusCode)
	}
	backlog := r.stored("bravo") / 4 // each flood body is 4 bytes
	before := len(b1.received())
	close(release)
	waitUntil(t, "carol's message", 60*time.Second, func() bool {
		for _, s := range b1.bodies() {
			if s == "carol" {
				return true
			}
		}
		return false
	})
	after := 0
	for _, s := range b1.bodies()[before:] {
		if s == "carol" {
			break
		}
		after++
	}
	<-more
	if backlog < 200 {
		t.Fatalf("a backlog of only %d when carol's message was stored", backlog)
	}
	// At most the rest of the batch in flight (64) and alpha's turn
	// in the next one.
	if after > 65 {
		t.Fatalf("carol's message waited for %d of alpha's (backlog %d, %d delivered before it was stored)", after, backlog, before)
	}
	t.Logf("backlog of %d, carol's message waited for %d", backlog, after)
}
