package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/testpg"
)

// After PostgreSQL restarts, the same store (its pool) works again by
// itself, with everything committed before the restart.
func TestRecoversAfterRestart(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	a, err := db.CreateAccount(ctx, "alpha@x.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var during error
	testpg.Restart(t, func() {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, during = db.Account(c, "alpha@x.org")
	})
	if during == nil {
		t.Fatal("the store answered while PostgreSQL was down")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := db.Account(ctx, "alpha@x.org")
		if err == nil {
			if got.ID != a.ID {
				t.Fatalf("after restart: %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store not usable 15s after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := db.CreateAccount(ctx, "bravo@x.org", time.Now()); err != nil {
		t.Fatalf("write after restart: %v", err)
	}
}
