package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("ops",
		test{"QueueDepth", testQueueDepth},
		test{"PingClosed", testPingClosed},
	)
}

// testQueueDepth: the backlog counts every waiting copy, their bytes and
// the acceptance time of the oldest, and shrinks as devices take theirs.
func testQueueDepth(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	q, err := db.QueueDepth(ctx)
	if err != nil || q != (store.Queue{}) {
		t.Fatalf("empty store: %+v, %v", q, err)
	}
	r1 := device(t, db, "rcpt@x.org", "r1")
	r2 := device(t, db, "rcpt@x.org", "r2")
	first := time.Unix(1_700_000_000, 0)
	for i, created := range []time.Time{first, first.Add(time.Minute)} {
		m := msg("s@x.org", "rcpt@x.org", make([]byte, 100+i))
		m.Created = created
		_, err := db.EnqueueMessage(ctx, m, []store.Target{{DeviceID: r1.ID, AccountID: r1.AccountID}, {DeviceID: r2.ID, AccountID: r2.AccountID}}, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	q, err = db.QueueDepth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if q.Deliveries != 4 || q.Bytes != 2*100+2*101 || !q.Oldest.Equal(first) {
		t.Fatalf("queue %+v: want 4 copies, 402 bytes, oldest %v", q, first)
	}
	ds, err := db.Pending(ctx, r1.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if err := db.Delivered(ctx, d.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if q, err = db.QueueDepth(ctx); err != nil || q.Deliveries != 2 || q.Bytes != 201 {
		t.Fatalf("after r1 took its copies: %+v, %v", q, err)
	}
}

// testPingClosed: Ping answers while the store serves and fails once its
// handle is closed (what a node's readiness check reports).
func testPingClosed(t *testing.T, open Opener) {
	db := open(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Ping(context.Background()); err == nil {
		t.Fatal("ping of a closed store answered")
	}
}
