package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSpendNoncePrunesByAge(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Unix(1_000_000, 0)
	for i := range 50 {
		if err := db.SpendNonce(ctx, []byte{byte(i)}, t0.Add(time.Minute), t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.SpendNonce(ctx, []byte{7}, t0.Add(time.Minute), t0.Add(time.Second)); !errors.Is(err, store.ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	// Once they expire, the next record prunes them all.
	if err := db.SpendNonce(ctx, []byte("late"), t0.Add(3*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM spent_nonces`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d records after pruning (%v), want 1", n, err)
	}
}
