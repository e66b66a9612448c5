package storetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func init() {
	add("handouts",
		test{"Limits", testHandoutLimits},
		test{"ConcurrentNodes", testHandoutConcurrentNodes},
	)
}

func testHandoutLimits(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	_, r1, r2 := twoDevices(t, db, "asker@x.org")
	_, tgt, other := twoDevices(t, db, "target@x.org")
	const window, perPair, perTarget = time.Hour, 2, 3
	t0 := time.Unix(1_800_000_000, 0)
	count := func(requester, target int64, at time.Time) bool {
		t.Helper()
		ok, err := db.CountHandout(ctx, requester, target, at, window, perPair, perTarget)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i, c := range []struct {
		requester, target int64
		at                time.Duration
		want              bool
	}{
		{r1.ID, tgt.ID, 0, true},
		{r1.ID, tgt.ID, time.Minute, true},
		{r1.ID, tgt.ID, 2 * time.Minute, false},       // the pair's limit
		{r2.ID, tgt.ID, 3 * time.Minute, true},        // another requester
		{r2.ID, tgt.ID, 4 * time.Minute, false},       // the target's limit (refusals are not counted)
		{r1.ID, other.ID, 5 * time.Minute, true},      // another target
		{r2.ID, tgt.ID, window, true},                 // the first handout is window old: forgotten, room for one
		{r2.ID, tgt.ID, window + time.Minute, false},  // r2's two (3 min, window) are within the window
		{r1.ID, tgt.ID, window + 2*time.Minute, true}, // r1's two are forgotten
	} {
		if got := count(c.requester, c.target, t0.Add(c.at)); got != c.want {
			t.Errorf("step %d (%+v): recorded %v, want %v", i, c, got, c.want)
		}
	}
	// A second handle (another node) sees the same counts.
	db2 := open(t)
	if ok, err := db2.CountHandout(ctx, r1.ID, other.ID, t0.Add(6*time.Minute), window, perPair, perTarget); err != nil || !ok {
		t.Fatalf("second handle: %v %v", ok, err)
	}
	if ok, err := db2.CountHandout(ctx, r1.ID, other.ID, t0.Add(7*time.Minute), window, perPair, perTarget); err != nil || ok {
		t.Errorf("second handle passed the pair's limit the first one counted: %v %v", ok, err)
	}
}

// testHandoutConcurrentNodes: requests on several handles at once (nodes)
// never record more than the limit.
func testHandoutConcurrentNodes(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	_, r1, _ := twoDevices(t, db, "asker@x.org")
	_, tgt, _ := twoDevices(t, db, "target@x.org")
	handles := []interface {
		CountHandout(context.Context, int64, int64, time.Time, time.Duration, int, int) (bool, error)
	}{db, open(t), open(t)}
	const perPair = 5
	now := time.Now()
	var recorded atomic.Int32
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := handles[i%len(handles)].CountHandout(ctx, r1.ID, tgt.ID, now, time.Hour, perPair, 100)
			if err != nil {
				t.Error(err)
			}
			if ok {
				recorded.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := recorded.Load(); n != perPair {
		t.Errorf("%d handouts recorded by parallel requests, want exactly %d", n, perPair)
	}
}
