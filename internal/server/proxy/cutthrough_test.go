package proxy

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestCutThrough: a MESSAGE to devices that are online and idle reaches
// them before the sender's 200 without being stored; anything waiting for
// a device (a stored copy, a delivery in progress, a backoff, a target
// offline) sends it through the store, in order.
func TestCutThrough(t *testing.T) {
	errNoStore := errors.New("the store was used")
	t.Run("online and idle: not stored", func(t *testing.T) {
		r, fs := newRig(t, nil)
		r.account("alpha", "a1", "a2")
		r.account("bravo", "b1")
		r.friends("alpha", "bravo")
		a1, a2, b1 := r.dev("alpha", "a1"), r.dev("alpha", "a2"), r.dev("bravo", "b1")
		for _, d := range []*dev{a2, b1} {
			if res := d.register(60); res.StatusCode != 200 {
				t.Fatalf("register: %d", res.StatusCode)
			}
		}
		waitIdle(t, r, "bravo", "b1")
		waitIdle(t, r, "alpha", "a2")
		fs.set("EnqueueMessage", errNoStore)
		for i := range 5 {
			if res := a1.send("bravo", fmt.Sprint(i)); res.StatusCode != 200 {
				t.Fatalf("message %d: %d %s", i, res.StatusCode, res.Reason)
			}
			// Taken before the 200: no waiting.
			if n := len(b1.received()); n != i+1 {
				t.Fatalf("after the 200 of message %d bravo has %d", i, n)
			}
			if n := len(a2.received()); n != i+1 {
				t.Fatalf("after the 200 of message %d alpha's other device has %d", i, n)
			}
		}
		if got := b1.bodies(); !slices.Equal(got, []string{"0", "1", "2", "3", "4"}) {
			t.Fatalf("order %q", got)
		}
	})
	t.Run("a target offline: stored for all", func(t *testing.T) {
		r, _ := newRig(t, nil)
		r.account("alpha", "a1")
		r.account("bravo", "b1", "b2")
		r.friends("alpha", "bravo")
		a1, b1 := r.dev("alpha", "a1"), r.dev("bravo", "b1")
		b1.register(60)
		waitIdle(t, r, "bravo", "b1")
		if res := a1.send("bravo", "x"); res.StatusCode != 200 {
			t.Fatalf("send: %d", res.StatusCode)
		}
		waitUntil(t, "b1's copy from the store", 5*time.Second, func() bool { return len(b1.received()) == 1 })
		// b2's copy of the 1-byte body stays; b1's is forgotten.
		waitUntil(t, "b1's copy forgotten, b2's kept", 5*time.Second, func() bool { return r.stored("bravo") == 1 })
	})
	t.Run("a copy waiting: behind it", func(t *testing.T) {
		r, _, a1, b1 := alphaBravo(t, nil)
		if res := a1.send("bravo", "stored"); res.StatusCode != 200 {
			t.Fatalf("send offline: %d", res.StatusCode)
		}
		held, release := make(chan struct{}), make(chan struct{})
		b1.mu.Lock()
		b1.answer = func(body string) int {
			if body == "stored" {
				close(held)
				<-release
			}
			return 200
		}
		b1.mu.Unlock()
		b1.register(60)
		<-held
		// The stored copy is being delivered: the next goes through the
		// store, behind it.
		if res := a1.send("bravo", "next"); res.StatusCode != 200 {
			t.Fatalf("send during delivery: %d", res.StatusCode)
		}
		if n := r.stored("bravo"); n != int64(len("stored")+len("next")) {
			t.Fatalf("bravo holds %d bytes during the delivery", n)
		}
		close(release)
		waitUntil(t, "both", 5*time.Second, func() bool { return len(b1.received()) == 2 })
		if got := b1.bodies(); !slices.Equal(got, []string{"stored", "next"}) {
			t.Fatalf("order %q", got)
		}
		waitUntil(t, "copies forgotten", 5*time.Second, func() bool { return r.stored("bravo") == 0 })
	})
	t.Run("deferred: stored and retried", func(t *testing.T) {
		r, _, a1, b1 := alphaBravo(t, nil)
		tries := 0
		b1.mu.Lock()
		b1.answer = func(string) int {
			if tries++; tries == 1 {
				return 503
			}
			return 200
		}
		b1.mu.Unlock()
		b1.register(60)
		waitIdle(t, r, "bravo", "b1")
		if res := a1.send("bravo", "x"); res.StatusCode != 200 {
			t.Fatalf("send: %d", res.StatusCode)
		}
		if n := r.stored("bravo"); n != 1 {
			t.Fatalf("a deferred copy not stored before the 200: %d bytes", n)
		}
		waitUntil(t, "the retry", 10*time.Second, func() bool { return len(b1.received()) == 1 })
	})
	t.Run("off: stored first", func(t *testing.T) {
		r, fs, a1, b1 := alphaBravo(t, func(c *Config) { c.StoreFirst = true })
		b1.register(60)
		waitIdle(t, r, "bravo", "b1")
		fs.set("EnqueueMessage", errNoStore)
		if res := a1.send("bravo", "x"); res.StatusCode != 500 {
			t.Fatalf("send with the store failing: %d, want 500", res.StatusCode)
		}
	})
}

// alphaBravo is a rig with two accounts that list each other, one device
// each.
func alphaBravo(t *testing.T, tweak func(*Config)) (*rig, *faulty, *dev, *dev) {
	t.Helper()
	r, fs := newRig(t, tweak)
	r.account("alpha", "a1")
	r.account("bravo", "b1")
	r.friends("alpha", "bravo")
	return r, fs, r.dev("alpha", "a1"), r.dev("bravo", "b1")
}

// waitIdle waits until a registered device's first delivery run (the one
// its REGISTER starts) has ended.
func waitIdle(t *testing.T, r *rig, account, device string) {
	t.Helper()
	id := r.deviceID(account, device)
	waitUntil(t, account+"/"+device+" idle", 5*time.Second, func() bool {
		r.p.mu.Lock()
		defer r.p.mu.Unlock()
		b := r.p.bindings[id]
		return b != nil && !b.running && !b.pending
	})
}
