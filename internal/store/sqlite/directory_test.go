package sqlite

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// Parallel answers to one claim share one attempt count: of many wrong
// answers at once, exactly maxAttempts are judged, the last drops the
// claim, and the rest find no claim.
func TestProveDirClaimParallel(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	d := device(t, db, "alpha@example.org", "a1")
	now := time.Now()
	c := store.DirClaim{ID: "C1", E164: "+420123456789", AccountID: d.AccountID, DeviceID: d.ID, CodeHash: []byte("h"), Created: now, Expires: now.Add(time.Minute)}
	if err := db.CreateDirClaim(ctx, c, []store.DirNotice{{DeviceID: d.ID, Kind: store.DirNoticeCode, E164: c.E164, Ref: c.ID, Code: "12345678", Created: now, Expires: c.Expires}}, 3, now); err != nil {
		t.Fatal(err)
	}
	const maxAttempts, tries = 5, 12
	wrong := errors.New("wrong")
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.ProveDirClaim(ctx, c.ID, d.ID, maxAttempts, now, func(store.DirClaim) error { return wrong })
			k := "other"
			switch {
			case errors.Is(err, store.ErrClaimAttempts):
				k = "locked"
			case errors.Is(err, wrong):
				k = "wrong"
			case errors.Is(err, store.ErrNotFound):
				k = "gone"
			}
			mu.Lock()
			counts[k]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts["wrong"] != maxAttempts-1 || counts["locked"] != 1 || counts["gone"] != tries-maxAttempts {
		t.Fatalf("outcomes %v", counts)
	}
	// The claim's code notice went with it.
	if ns, err := db.TakeDirNotices(ctx, d.ID, "", now); err != nil || len(ns) != 0 {
		t.Fatalf("notices after the drop: %+v %v", ns, err)
	}
}

// The budget holds under parallel spending and renews with its window.
func TestSpendDirBudget(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	d := device(t, db, "alpha@example.org", "a1")
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := db.SpendDirBudget(ctx, d.ID, 1, 10, time.Minute, now); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrBudget) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok != 10 {
		t.Fatalf("%d spends within a budget of 10", ok)
	}
	if _, err := db.SpendDirBudget(ctx, d.ID, 1, 10, time.Minute, now.Add(59*time.Second)); !errors.Is(err, store.ErrBudget) {
		t.Fatalf("within the window: %v", err)
	}
	end, err := db.SpendDirBudget(ctx, d.ID, 10, 10, time.Minute, now.Add(time.Minute))
	if err != nil || !end.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("next window: %v %v", end, err)
	}
}

// One number, one account, also when the second account publishes
// without a claim check in between.
func TestPublishDirOneAccount(t *testing.T) {
	db := open(t)
	ctx := context.Background()
	a := device(t, db, "alpha@example.org", "a1")
	b := device(t, db, "bravo@example.org", "b1")
	e := store.DirEntry{E164: "+420123456789", Hash: []byte("h1"), AccountID: a.AccountID, AOR: "alpha@example.org",
		Keys: []store.DirKey{{Device: "a1", Cert: []byte{1}}}, Published: time.Now()}
	if err := db.PublishDir(ctx, e); err != nil {
		t.Fatal(err)
	}
	e2 := e
	e2.AccountID, e2.AOR = b.AccountID, "bravo@example.org"
	if err := db.PublishDir(ctx, e2); !errors.Is(err, store.ErrNumberTaken) {
		t.Fatalf("second account: %v", err)
	}
	c := store.DirClaim{ID: "C", E164: e.E164, AccountID: b.AccountID, DeviceID: b.ID, CodeHash: []byte("h"), Created: time.Now(), Expires: time.Now().Add(time.Minute)}
	if err := db.CreateDirClaim(ctx, c, nil, 3, time.Now()); !errors.Is(err, store.ErrNumberTaken) {
		t.Fatalf("claim by the second account: %v", err)
	}
	got, err := db.DirEntriesByHash(ctx, [][]byte{[]byte("h1"), []byte("nope")})
	if err != nil || len(got) != 1 || got[0].AOR != "alpha@example.org" || len(got[0].Keys) != 1 {
		t.Fatalf("by hash: %+v %v", got, err)
	}
}
