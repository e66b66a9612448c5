package client

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestQueueClaimedOnce: two processes of one profile (a running listen and
// a send) flush the same queue; of their claims on an entry exactly one
// succeeds, so the message is sent once. Before, both sent it, and a plain
// message arrived twice.
func TestQueueClaimedOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "profile.db")
	key := make([]byte, 32)
	open := func() *messenger {
		db, err := openLocalDB(ctx, path, key)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.db.Close() })
		return &messenger{p: &Profile{db: db, now: time.Now}}
	}
	a, b := open(), open()
	for round := range 20 {
		res, err := a.p.db.db.ExecContext(ctx, `INSERT INTO queue(kind, peer, nonce, payload, next_try, state) VALUES('plain','bravo@example.org',?,x'00',?,'queued')`,
			round+1, time.Now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		var wg sync.WaitGroup
		got := make([]bool, 2)
		for i, m := range []*messenger{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := m.claim(ctx, id)
				if err != nil {
					t.Error(err)
				}
				got[i] = ok
			}()
		}
		wg.Wait()
		if got[0] == got[1] {
			t.Fatalf("round %d: claims %v, want exactly one", round, got)
		}
		// Claimed: not due for anyone until the claimer settles it or its
		// lease ends.
		if ok, _ := a.claim(ctx, id); ok {
			t.Fatalf("round %d: claimed again while leased", round)
		}
	}
}
