package server

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
)

// TestSessionBounds: exchanges in progress are bounded per account and in
// total, and expired ones make room.
func TestSessionBounds(t *testing.T) {
	ctx := context.Background()
	cfg := Defaults(t.TempDir())
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	now := time.Unix(1_800_000_000, 0)
	n.now = func() time.Time { return now }
	n.maxSessions, n.maxAccountSessions = 3, 2
	busy := &api.Error{Code: api.CodeBusy}
	for _, tc := range []struct {
		account string
		full    bool
	}{{"a@x", false}, {"a@x", false}, {"a@x", true}, {"b@x", false}, {"c@x", true}} {
		_, err := n.newSession(&pending{kind: "login", account: tc.account})
		if full := errors.Is(err, busy); full != tc.full || (err != nil && !full) {
			t.Fatalf("session for %s: %v, want full=%v", tc.account, err, tc.full)
		}
	}
	if err := n.sessionRoom("c@x"); !errors.Is(err, busy) {
		t.Fatalf("room while full: %v", err)
	}
	now = now.Add(sessionTTL + time.Second)
	if _, err := n.newSession(&pending{kind: "login", account: "c@x"}); err != nil {
		t.Fatalf("after the others expired: %v", err)
	}
	if len(n.sessions) != 1 {
		t.Fatalf("%d sessions kept, want 1", len(n.sessions))
	}
}
