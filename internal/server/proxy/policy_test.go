package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/server/operator"
)

// opPolicies reads limits through the operator service as the node does.
type opPolicies struct{ s *operator.Service }

func (o opPolicies) AccountLimits(ctx context.Context, account string) AccountLimits {
	p, _ := o.s.Effective(ctx, account)
	return AccountLimits{Rate: p.MessageRate, Burst: p.MessageBurst, MaxStored: p.MaxStoredBytes, MaxExpires: p.RegistrationExpiry}
}

// TestPolicyChangesApplyLive changes an account's rate, a recipient's
// storage limit and a registration maximum through an operator service
// on the same store (as 'phonexd policy set' in another process does)
// while the proxy runs, and sees each enforced on the next request.
func TestPolicyChangesApplyLive(t *testing.T) {
	def := operator.Policy{MessageRate: 0.5, MessageBurst: 2, MaxStoredBytes: 64 << 20, FileQuota: 1, FileMaxSize: 1, FileExpiry: time.Hour,
		RegistrationExpiry: time.Hour}
	var node *operator.Service
	r, _ := newRig(t, func(c *Config) {
		c.Rate, c.Burst = def.MessageRate, def.MessageBurst
		node = operator.New(c.Store, operator.Settings{Domain: domain, Defaults: def, PollEvery: 50 * time.Millisecond})
		c.Policies = opPolicies{node}
	})
	admin := operator.New(r.db, operator.Settings{Domain: domain, Defaults: def})
	r.account("alpha", "a1")
	r.account("bravo", "b1")
	r.friends("alpha", "bravo")
	a1 := r.dev("alpha", "a1")
	ctx := context.Background()
	set := func(account, key, value string) {
		t.Helper()
		if err := admin.SetPolicy(ctx, "cli:test", account, "", key, value); err != nil {
			t.Fatal(err)
		}
		time.Sleep(120 * time.Millisecond) // past the node's poll interval
	}

	// The configured rate: two in a burst, then 503.
	for i := 0; i < 2; i++ {
		if res := a1.send("bravo", "x"); res.StatusCode != 200 {
			t.Fatalf("within the burst: %d %s", res.StatusCode, res.Reason)
		}
	}
	if res := a1.send("bravo", "x"); res.StatusCode != 503 {
		t.Fatalf("over the configured rate: %d %s", res.StatusCode, res.Reason)
	}
	// Raised for alpha: alpha sends again at once.
	set("alpha@"+domain, "message_rate", "1000")
	set("alpha@"+domain, "message_burst", "1000")
	for i := 0; i < 5; i++ {
		if res := a1.send("bravo", "x"); res.StatusCode != 200 {
			t.Fatalf("after raising alpha's rate, message %d: %d %s", i, res.StatusCode, res.Reason)
		}
	}
	// Lowered again: refused within the new burst.
	set("alpha@"+domain, "message_burst", "1")
	set("alpha@"+domain, "message_rate", "0.1")
	a1.send("bravo", "x")
	if res := a1.send("bravo", "x"); res.StatusCode != 503 {
		t.Fatalf("after lowering alpha's rate: %d %s", res.StatusCode, res.Reason)
	}
	set("alpha@"+domain, "message_rate", "1000")
	set("alpha@"+domain, "message_burst", "1000")

	// bravo (offline) holds 8 bytes; a storage limit of 1024 for bravo
	// takes one 1000-byte message more, not two.
	set("bravo@"+domain, "max_stored_bytes", "1024")
	if res := a1.sendAs("alpha", "bravo", EnvelopeType, filler(1000)); res.StatusCode != 200 {
		t.Fatalf("within bravo's limit: %d %s", res.StatusCode, res.Reason)
	}
	if res := a1.sendAs("alpha", "bravo", EnvelopeType, filler(1000)); res.StatusCode != 480 || !strings.Contains(res.Reason, "Recipient storage full") {
		t.Fatalf("over bravo's new storage limit: %d %s (holds %d)", res.StatusCode, res.Reason, r.stored("bravo"))
	}
	set("bravo@"+domain, "max_stored_bytes", "") // back to the default
	if res := a1.sendAs("alpha", "bravo", EnvelopeType, filler(1000)); res.StatusCode != 200 {
		t.Fatalf("after the reset: %d %s", res.StatusCode, res.Reason)
	}

	// The longest registration follows the account's policy.
	set("alpha@"+domain, "registration_expiry", "2m")
	res := a1.register(1 << 20)
	if c := res.Contact(); c == nil || !strings.Contains(c.Value(), fmt.Sprintf("expires=%d", 120)) {
		t.Fatalf("registration under a 2m policy: %v", c)
	}
}
