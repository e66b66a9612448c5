package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// TestWaitingKeptOnlyWhileNothingCommits: Waiting's kept answer ends with
// any commit, through this handle's pool, the group commit or another
// handle (the conformance suite's route/Waiting covers other handles),
// and a kept answer is used while nothing is committed.
func TestWaitingKeptOnlyWhileNothingCommits(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	device(t, db, "sndr@x.org", "s1")
	want := func(what string, waiting bool) int64 {
		t.Helper()
		gen, got, err := db.Waiting(ctx, []int64{r.ID})
		if err != nil {
			t.Fatal(err)
		}
		g, err := db.RoutingGeneration(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got != waiting || gen != g {
			t.Fatalf("%s: waiting %v (want %v), generation %d (want %d)", what, got, waiting, gen, g)
		}
		return gen
	}
	want("nothing stored", false)
	// Kept: a read of the tables now would fail, the kept answer does not.
	db.wait.mu.Lock()
	kept := db.wait.gen != 0 && db.wait.clean[r.ID]
	db.wait.mu.Unlock()
	if !kept {
		t.Fatal("the answer was not kept")
	}
	if _, err := db.db.ExecContext(ctx, `CREATE TEMP TABLE probe(x)`); err != nil {
		t.Fatal(err) // a temporary table commits nothing to the database file
	}
	want("nothing committed since", false)
	if _, err := db.EnqueueMessage(ctx, store.Message{Sender: "sndr@x.org", SenderDevice: "s1", Recipient: "rcpt@x.org",
		ContentType: "text/plain", Body: []byte("x"), Created: time.Now()}, []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}, 0); err != nil {
		t.Fatal(err)
	}
	want("a copy stored through the group commit", true)
	ds, err := db.Pending(ctx, r.ID, 10)
	if err != nil || len(ds) != 1 {
		t.Fatalf("pending: %v %d", err, len(ds))
	}
	if err := db.Delivered(ctx, ds[0].Seq); err != nil {
		t.Fatal(err)
	}
	before := want("delivered", false)
	if err := db.AddContact(ctx, r.AccountID, "sndr@x.org", time.Now()); err != nil {
		t.Fatal(err)
	}
	if after := want("a contact added through the pool", false); after == before {
		t.Fatalf("generation %d unchanged", after)
	}
}

// BenchmarkWaiting: the cut-through's read while nothing is committed (a
// kept answer behind PRAGMA data_version), and the statement alone.
func BenchmarkWaiting(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := device(b, db, "rcpt@x.org", "r1")
	// As the proxy calls it: under a deadline.
	ctx, cancel := context.WithTimeout(ctx, time.Hour)
	defer cancel()
	b.Run("kept", func(b *testing.B) {
		for b.Loop() {
			if _, w, err := db.Waiting(ctx, []int64{r.ID}); err != nil || w {
				b.Fatal(err, w)
			}
		}
	})
	b.Run("statement", func(b *testing.B) {
		for b.Loop() {
			if _, w, err := db.waiting(ctx, []int64{r.ID}); err != nil || w {
				b.Fatal(err, w)
			}
		}
	})
}
