package stp

import (
	"testing"
	"time"
)

func TestMemoryReplayGuard(t *testing.T) {
	now := testNow
	g := NewMemoryReplayGuard(time.Hour, func() time.Time { return now })
	steps := []struct {
		sender  string
		nonce   uint32
		advance time.Duration
		seen    bool
	}{
		{"alice", 1, 0, false},
		{"alice", 1, 0, true},
		{"bob", 1, 0, false}, // nonces are per sender
		{"alice", 2, 0, false},
		{"alice", 1, 30 * time.Minute, true},
		{"alice", 1, 2 * time.Hour, false}, // forgotten after the window
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		seen, err := g.Seen(s.sender, s.nonce, testNow)
		if err != nil || seen != s.seen {
			t.Errorf("step %d: seen %v, %v; want %v", i, seen, err, s.seen)
		}
	}
}
