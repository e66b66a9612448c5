package client

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestReplayTablePrunedAndBounded: records older than the timestamp window
// go; past the bound the oldest go too, and messages older than the kept
// ones count as seen, also after a restart.
func TestReplayTablePrunedAndBounded(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), DBFile)
	key := make([]byte, 32)
	l, err := openLocalDB(ctx, path, key)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.close() }()
	defer func(n int) { maxSeen = n }(maxSeen)
	maxSeen = 10
	now := time.Now()
	count := func() int {
		var n int
		if err := l.db.QueryRow(`SELECT COUNT(*) FROM seen WHERE sender<>''`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	accept := func(sender string, nonce uint32, sent time.Time) {
		t.Helper()
		g := &pendingGuard{db: l.db, limits: &l.seen, now: func() time.Time { return now }}
		if seen, err := g.Seen(sender, nonce, sent); err != nil || seen {
			t.Fatalf("%s/%d: seen=%v %v", sender, nonce, seen, err)
		}
		if err := g.commit(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Five records older than the window, five inside it.
	for i := range 5 {
		accept("old@x/d", uint32(i), now.Add(-seenKeep-time.Duration(i+1)*time.Hour))
	}
	l.seen.last = time.Time{}
	accept("new@x/d", 0, now.Add(-time.Hour))
	if n := count(); n != 1 {
		t.Fatalf("%d records after pruning by age, want 1", n)
	}
	// Past the bound, the oldest records go and the floor rises.
	for i := range 15 {
		l.seen.last = time.Time{}
		accept("new@x/d", uint32(100+i), now.Add(-time.Duration(30-i)*time.Minute))
	}
	if n := count(); n > maxSeen {
		t.Fatalf("%d records, bound %d", n, maxSeen)
	}
	check := func(l *localDB, sender string, nonce uint32, sent time.Time, want bool) {
		t.Helper()
		g := &pendingGuard{db: l.db, limits: &l.seen, now: func() time.Time { return now }}
		if seen, err := g.Seen(sender, nonce, sent); err != nil || seen != want {
			t.Fatalf("%s/%d at %v: seen=%v %v, want %v", sender, nonce, sent, seen, err, want)
		}
	}
	// A dropped record's message (sent 30 minutes ago) is still refused;
	// a new message is not.
	check(l, "new@x/d", 100, now.Add(-30*time.Minute), true)
	check(l, "other@x/d", 1, now, false)
	l.close()
	if l, err = openLocalDB(ctx, path, key); err != nil {
		t.Fatal(err)
	}
	check(l, "new@x/d", 100, now.Add(-30*time.Minute), true)
}
