package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/pidf"
	"github.com/phonex/phonex/internal/server/presence"
)

// lastShows waits until the watcher's latest NOTIFY shows want.
func (d *pdev) lastShows(what, want string) {
	d.r.t.Helper()
	last := ""
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if got := d.got(); len(got) > 0 {
			if last = shows(got[len(got)-1]); last == want {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.r.t.Fatalf("%s: %s/%s sees %s, want %s", what, d.account, d.name, last, want)
}

// TestCallPresence: with the node's presence service as the proxy's call
// observer (as phonexd composes them), a call the node routes shows both
// accounts "on a call" to their watchers while the dialog lasts, and their
// earlier state once it ends, by BYE or by a leg's dropped connection.
func TestCallPresence(t *testing.T) {
	old := presenceEvery
	presenceEvery = 100 * time.Millisecond
	t.Cleanup(func() { presenceEvery = old })
	pres := presence.New(nil)
	r, _ := newRig(t, func(c *Config) { c.Presence, c.Calls = pres, pres })
	r.account("alice", "a1")
	r.account("bob", "b1")
	r.account("carol", "c1", "c2")
	r.friends("alice", "bob")
	r.friends("carol", "alice")
	r.friends("carol", "bob")

	// carol watches alice from one device and bob from the other.
	watchA, watchB := r.pdev("carol", "c1"), r.pdev("carol", "c2")
	for w, target := range map[*pdev]string{watchA: "alice", watchB: "bob"} {
		if res := w.register(60); res.StatusCode != 200 {
			t.Fatalf("register %s: %d", w.name, res.StatusCode)
		}
		if res := w.subscribe(target, 600); res.StatusCode != 200 {
			t.Fatalf("subscribe to %s: %d", target, res.StatusCode)
		}
	}
	a1, b1 := r.phone("alice", "a1"), r.phone("bob", "b1")
	a1.register()
	b1.register()
	b1.setAnswer(ring(0, 200))
	// alice sets a state of her own on the connection she calls from.
	alicePub := &pdev{dev: &dev{r: r, account: "alice", name: "a1", ua: a1.ua, cli: a1.cli}}
	if res := alicePub.publish("", alicePub.doc(pidf.Away, "lunch"), 600); res.StatusCode != 200 {
		t.Fatalf("publish: %d", res.StatusCode)
	}
	aliceBefore, bobBefore := `away "lunch" [a1]`, `online "" [b1]`
	watchA.lastShows("before the call", aliceBefore)
	watchB.lastShows("before the call", bobBefore)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sess, err := a1.call(ctx, "alice", "bob", nil)
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	wait(t, b1, "ack")
	watchA.lastShows("during the call", `oncall "" [a1]`)
	watchB.lastShows("during the call", `oncall "" [b1]`)
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	wait(t, b1, "bye")
	watchA.lastShows("after BYE", aliceBefore)
	watchB.lastShows("after BYE", bobBefore)

	// A second call whose callee's connection drops: the node ends the
	// dialog, the caller is no longer on a call, the callee is offline.
	sess, err = a1.call(ctx, "alice", "bob", nil)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	sess.Ack(ctx)
	wait(t, b1, "ack")
	watchA.lastShows("during the second call", `oncall "" [a1]`)
	watchB.lastShows("during the second call", `oncall "" [b1]`)
	b1.ua.Close()
	waitUntil(t, "the dialog to end", 5*time.Second, func() bool { return r.p.ActiveCalls() == 0 })
	watchA.lastShows("after the callee's connection dropped", aliceBefore)
	watchB.lastShows("after the callee's connection dropped", `offline "" []`)
	// What the watcher of alice saw, repeated documents folded: her own
	// state, then "on a call" exactly while each call lasted.
	var seen []string
	for _, n := range watchA.got() {
		if s := shows(n); len(seen) == 0 || seen[len(seen)-1] != s {
			seen = append(seen, s)
		}
	}
	want := []string{aliceBefore, `oncall "" [a1]`, aliceBefore, `oncall "" [a1]`, aliceBefore}
	if len(seen) < len(want) || fmt.Sprint(seen[len(seen)-len(want):]) != fmt.Sprint(want) {
		t.Errorf("the watcher of alice saw %q, want it to end with %q", seen, want)
	}
}
