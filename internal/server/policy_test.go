package server_test

import (
	"context"
	"github.com/phonex/phonex/internal/throttle"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/server/proxy"
)

// A file limit set through the operator service (as 'phonexd policy set'
// does, from another handle on the store) applies to the next upload of
// that account only, without a restart, and goes with its reset.
func TestNodeFilePolicyLive(t *testing.T) {
	n := startNode(t, nil)
	alpha := n.enroll(t, "alpha@example.org", "a1", "alpha password")
	bravo := n.enroll(t, "bravo@example.org", "b1", "bravo password")
	ctx := context.Background()
	alpha.AddContact(ctx, "bravo@example.org")
	bravo.AddContact(ctx, "alpha@example.org")
	a, b := deviceClient(t, n, alpha), deviceClient(t, n, bravo)
	post := func(dev string, to string) (int, string) {
		t.Helper()
		do := a
		if dev == "bravo" {
			do = b
		}
		res, data := do("POST", api.PathFiles, jsonBody(api.FileCreate{Recipient: to, Size: 5000, Header: []byte("hdr")}), nil)
		return res.StatusCode, string(data)
	}
	// Without a policy the size passes; the request fails later for want
	// of a slot.
	if code, body := post("alpha", "bravo@example.org"); code != 403 {
		t.Fatalf("before the policy: %d %s", code, body)
	}
	op := n.adm.Operator()
	if err := op.SetPolicy(ctx, "cli:test", "alpha@example.org", "", "file_max_size", "1000"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := post("alpha", "bravo@example.org")
		if code == 413 && strings.Contains(body, "at most 1000 bytes") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("file_max_size 1000 not applied within 10 s: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := post("bravo", "alpha@example.org"); code != 403 {
		t.Fatalf("bravo under alpha's policy: %d %s", code, body)
	}
	if err := op.SetPolicy(ctx, "cli:test", "alpha@example.org", "", "file_max_size", ""); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		code, body := post("alpha", "bravo@example.org")
		if code == 403 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the reset: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The limits the node gives its SIP proxy follow the policies of the
// account and its groups.
func TestNodeAccountLimits(t *testing.T) {
	ctx := context.Background()
	cfg := server.Defaults(t.TempDir())
	cfg.Domain = "example.org"
	if _, err := server.Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	node, err := server.Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	adm, err := server.OpenAdmin(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	def := proxy.AccountLimits{Rate: cfg.MessageRate, Burst: cfg.MessageBurst, MaxStored: cfg.MaxStoredBytes, MaxExpires: server.DefaultRegistrationExpiry}
	if got := node.AccountLimits(ctx, "alpha@example.org"); got != def {
		t.Fatalf("defaults %+v, want %+v", got, def)
	}
	op := adm.Operator()
	if _, err := adm.AddUser(ctx, "alpha@example.org", 0); err != nil {
		t.Fatal(err)
	}
	if err := op.AddGroup(ctx, "cli:test", "staff"); err != nil {
		t.Fatal(err)
	}
	if err := op.AddMember(ctx, "cli:test", "staff", "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	if err := op.SetPolicy(ctx, "cli:test", "", "staff", "message_rate", "3"); err != nil {
		t.Fatal(err)
	}
	if err := op.SetPolicy(ctx, "cli:test", "alpha@example.org", "", "registration_expiry", "10m"); err != nil {
		t.Fatal(err)
	}
	want := def
	want.Rate, want.MaxExpires = 3, 10*time.Minute
	// The node sees policy changes at its next poll of the store
	// (operator.DefaultPoll); a loaded machine may take longer.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got := node.AccountLimits(ctx, "alpha@example.org")
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with policies %+v, want %+v", got, want)
		}
	}
}

// A lock-out threshold set for one account applies to its devices' next
// unlock; other accounts keep the node's.
func TestNodeThrottlePolicyLive(t *testing.T) {
	fast := throttle.Policy{Free: 1, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond, LockAfter: 10}
	n := startNode(t, func(c *server.Config) { c.DeviceAttempts, c.AccountAttempts = fast, fast })
	alpha := n.enroll(t, "alpha@example.org", "laptop", "alpha password")
	bravo := n.enroll(t, "bravo@example.org", "laptop", "bravo password")
	ha, hb := alpha.Meta.Handle, bravo.Meta.Handle
	alpha.Close()
	bravo.Close()
	if err := n.adm.Operator().SetPolicy(context.Background(), "cli:test", "alpha@example.org", "", "device_attempts_lock", "3"); err != nil {
		t.Fatal(err)
	}
	unlock := func(h string) int {
		time.Sleep(5 * time.Millisecond) // past the delay
		status, _ := n.post(t, api.PathUnlock, api.Unlock{Handle: h, Blind: blind(t)})
		return status
	}
	// The witness that the node polled the change: an unlock of alpha's
	// answers with 2 attempts left (3 - 1) instead of 9; the operator then
	// lifts the attempts it counted.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var res api.UnlockResult
		if status := n.postOK(t, api.PathUnlock, api.Unlock{Handle: ha, Blind: blind(t)}, &res); status != http.StatusOK {
			t.Fatalf("alpha's unlock while waiting for the policy: %d", status)
		}
		if err := n.adm.Unlock(context.Background(), "alpha@example.org/laptop"); err != nil {
			t.Fatal(err)
		}
		if res.Remaining == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("device_attempts_lock 3 not applied: %d attempts left", res.Remaining)
		}
	}
	// Each unlock begun and never finished counts as a failed attempt.
	for i := 0; i < 3; i++ {
		if s := unlock(ha); s != http.StatusOK {
			t.Fatalf("alpha's unlock %d: %d", i, s)
		}
		if s := unlock(hb); s != http.StatusOK {
			t.Fatalf("bravo's unlock %d: %d", i, s)
		}
	}
	if s := unlock(ha); s == http.StatusOK {
		t.Fatal("alpha's fourth unlock passed a lock-out after 3")
	}
	if s := unlock(hb); s != http.StatusOK {
		t.Fatalf("bravo's fourth unlock under the node's policy: %d", s)
	}
	ds, err := n.adm.Devices(context.Background(), "alpha@example.org")
	if err != nil || len(ds) != 1 || !ds[0].Locked {
		t.Fatalf("alpha's device not shown locked: %+v %v", ds, err)
	}
}
