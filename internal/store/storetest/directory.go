package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("directory",
		test{"ClaimNoticesAndPublish", testDirClaim},
		test{"ProveDirClaimConcurrent", testProveDirClaimConcurrent},
		test{"PublishDirOneAccount", testPublishDirOneAccount},
		test{"PublishDirConcurrent", testPublishDirConcurrent},
		test{"Replacement", testDirReplacement},
		test{"SpendDirBudget", testSpendDirBudget},
	)
}

func dirClaim(id string, d store.Device, number string, now time.Time) store.DirClaim {
	return store.DirClaim{ID: id, E164: number, AccountID: d.AccountID, DeviceID: d.ID, CodeHash: []byte("hash-" + id), Created: now, Expires: now.Add(time.Minute)}
}

func codeNotice(d store.Device, c store.DirClaim) store.DirNotice {
	return store.DirNotice{DeviceID: d.ID, Kind: store.DirNoticeCode, E164: c.E164, Ref: c.ID, Code: "12345678", FromDevice: "a1", Created: c.Created, Expires: c.Expires}
}

// A claim hands its notices out once per device, counts wrong answers,
// goes with a right one, and expires; open claims are capped per account.
func testDirClaim(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Unix(1_900_000_000, 0)
	a1 := device(t, db, "alpha@x.org", "a1")
	a2 := device(t, db, "alpha@x.org", "a2")
	c := dirClaim("C1", a1, "+420123456789", t0)
	if err := db.CreateDirClaim(ctx, c, []store.DirNotice{codeNotice(a1, c), codeNotice(a2, c)}, 2, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateDirClaim(ctx, c, nil, 2, t0); !errors.Is(err, store.ErrExists) {
		t.Fatalf("claim id twice: %v", err)
	}
	if ns, err := db.TakeDirNotices(ctx, a2.ID, "other", t0); err != nil || len(ns) != 0 {
		t.Fatalf("notices of another ref: %+v %v", ns, err)
	}
	ns, err := db.TakeDirNotices(ctx, a2.ID, "C1", t0)
	if err != nil || len(ns) != 1 || ns[0].Code != "12345678" || ns[0].Kind != store.DirNoticeCode || ns[0].E164 != c.E164 || !ns[0].Expires.Equal(c.Expires) {
		t.Fatalf("a2's notices: %+v %v", ns, err)
	}
	if ns, _ := db.TakeDirNotices(ctx, a2.ID, "", t0); len(ns) != 0 {
		t.Fatalf("handed out twice: %+v", ns)
	}
	wrong := errors.New("wrong")
	got, err := db.ProveDirClaim(ctx, "C1", a1.ID, 3, t0, func(store.DirClaim) error { return wrong })
	if !errors.Is(err, wrong) || got.Attempts != 1 {
		t.Fatalf("wrong answer: %+v %v", got, err)
	}
	if _, err := db.ProveDirClaim(ctx, "C1", a2.ID, 3, t0, func(store.DirClaim) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("answer of another device: %v", err)
	}
	got, err = db.ProveDirClaim(ctx, "C1", a1.ID, 3, t0, func(cl store.DirClaim) error {
		if string(cl.CodeHash) != "hash-C1" || cl.Attempts != 1 {
			t.Errorf("claim as judged: %+v", cl)
		}
		return nil
	})
	if err != nil || got.E164 != c.E164 {
		t.Fatalf("right answer: %+v %v", got, err)
	}
	if _, err := db.ProveDirClaim(ctx, "C1", a1.ID, 3, t0, func(store.DirClaim) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second right answer: %v", err)
	}
	if ns, _ := db.TakeDirNotices(ctx, a1.ID, "", t0); len(ns) != 0 {
		t.Fatalf("a1's notice outlived its claim: %+v", ns)
	}
	// Expiry, and the cap on open claims (expired ones do not count).
	for _, id := range []string{"C2", "C3"} {
		if err := db.CreateDirClaim(ctx, dirClaim(id, a1, "+420123456789", t0), nil, 2, t0); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateDirClaim(ctx, dirClaim("C4", a1, "+420123456789", t0), nil, 2, t0); !errors.Is(err, store.ErrClaimsOpen) {
		t.Fatalf("third open claim: %v", err)
	}
	if _, err := db.ProveDirClaim(ctx, "C2", a1.ID, 3, t0.Add(time.Minute), func(store.DirClaim) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired claim: %v", err)
	}
	if err := db.CreateDirClaim(ctx, dirClaim("C4", a1, "+420123456789", t0.Add(time.Minute)), nil, 2, t0.Add(time.Minute)); err != nil {
		t.Fatalf("claim after the others expired: %v", err)
	}
	if err := db.DeleteExpiredDir(ctx, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ProveDirClaim(ctx, "C4", a1.ID, 3, t0.Add(time.Minute), func(store.DirClaim) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim after DeleteExpiredDir: %v", err)
	}
}

// Parallel answers to one claim share one attempt count: of many wrong
// answers at once, exactly maxAttempts are judged, the last drops the
// claim, and the rest find no claim.
func testProveDirClaimConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	d := device(t, db, "alpha@x.org", "a1")
	now := time.Now()
	c := dirClaim("C1", d, "+420123456789", now)
	if err := db.CreateDirClaim(ctx, c, []store.DirNotice{codeNotice(d, c)}, 3, now); err != nil {
		t.Fatal(err)
	}
	const maxAttempts, tries = 5, 12
	wrong := errors.New("wrong")
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < tries; i++ {
		h := db
		if i%2 == 1 {
			h = open(t) // another node
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.ProveDirClaim(ctx, c.ID, d.ID, maxAttempts, now, func(store.DirClaim) error { return wrong })
			k := "other: " + errString(err)
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
	if ns, err := db.TakeDirNotices(ctx, d.ID, "", now); err != nil || len(ns) != 0 {
		t.Fatalf("notices after the drop: %+v %v", ns, err)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

func dirEntry(d store.Device, aor, number, hash string, now time.Time) store.DirEntry {
	return store.DirEntry{E164: number, Hash: []byte(hash), AccountID: d.AccountID, AOR: aor,
		Keys: []store.DirKey{{Device: d.Name, Cert: []byte("cert-" + d.Name)}}, Published: now}
}

// One number, one account: a second account can neither publish nor
// claim it; lookups by number, address and hash find it.
func testPublishDirOneAccount(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Unix(1_900_000_000, 0)
	a := device(t, db, "alpha@x.org", "a1")
	b := device(t, db, "bravo@x.org", "b1")
	e := dirEntry(a, "alpha@x.org", "+420123456789", "h1", now)
	if err := db.PublishDir(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := db.PublishDir(ctx, dirEntry(b, "bravo@x.org", "+420123456789", "h1", now)); !errors.Is(err, store.ErrNumberTaken) {
		t.Fatalf("second account: %v", err)
	}
	if err := db.CreateDirClaim(ctx, dirClaim("C", b, e.E164, now), nil, 3, now); !errors.Is(err, store.ErrNumberTaken) {
		t.Fatalf("claim by the second account: %v", err)
	}
	e.Keys = append(e.Keys, store.DirKey{Device: "a2", Cert: []byte("cert-a2")})
	if err := db.PublishDir(ctx, e); err != nil {
		t.Fatalf("republish by the owner: %v", err)
	}
	if err := db.PublishDir(ctx, dirEntry(a, "alpha@x.org", "+420123456780", "h2", now)); err != nil {
		t.Fatal(err)
	}
	got, err := db.DirEntry(ctx, e.E164)
	if err != nil || got.AOR != "alpha@x.org" || len(got.Keys) != 2 || string(got.Keys[1].Cert) != "cert-a2" || !got.Published.Equal(now) {
		t.Fatalf("by number: %+v %v", got, err)
	}
	if _, err := db.DirEntry(ctx, "+420000000000"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unpublished number: %v", err)
	}
	if es, err := db.DirEntriesByAOR(ctx, "alpha@x.org"); err != nil || len(es) != 2 || es[0].E164 != "+420123456780" {
		t.Fatalf("by address: %+v %v", es, err)
	}
	if es, err := db.DirEntriesByHash(ctx, [][]byte{[]byte("h1"), []byte("nope")}); err != nil || len(es) != 1 || es[0].E164 != e.E164 {
		t.Fatalf("by hash: %+v %v", es, err)
	}
	if es, err := db.DirEntries(ctx); err != nil || len(es) != 2 {
		t.Fatalf("all: %+v %v", es, err)
	}
}

// Accounts racing to publish one free number: exactly one gets it.
func testPublishDirConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Now()
	const n = 8
	var ds []store.Device
	for i := 0; i < n; i++ {
		ds = append(ds, device(t, db, string(rune('a'+i))+"@x.org", "d"))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i, d := range ds {
		h := db
		if i%2 == 1 {
			h = open(t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.PublishDir(ctx, dirEntry(d, d.Account, "+420123456789", "h", now))
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.Is(err, store.ErrNumberTaken) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d accounts published one number", won)
	}
}

// A pending replacement replaces an earlier one, is published when due
// (its notices stay), and a cancelled one is gone with its notices.
func testDirReplacement(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	t0 := time.Unix(1_900_000_000, 0)
	phone := device(t, db, "alpha@x.org", "phone")
	laptop := device(t, db, "alpha@x.org", "laptop")
	e := dirEntry(phone, "alpha@x.org", "+420123456789", "h1", t0)
	if err := db.PublishDir(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := db.PublishDir(ctx, dirEntry(phone, "alpha@x.org", "+420123456780", "h2", t0)); err != nil {
		t.Fatal(err)
	}
	bravo := device(t, db, "bravo@x.org", "b1")
	if err := db.PublishDir(ctx, dirEntry(bravo, "bravo@x.org", "+420123456781", "h3", t0)); err != nil {
		t.Fatal(err)
	}
	rep := func(id string) store.DirReplacement {
		return store.DirReplacement{ID: id, E164: e.E164, AccountID: laptop.AccountID, DeviceID: laptop.ID, AOR: "alpha@x.org",
			Keys: []store.DirKey{{Device: "laptop", Cert: []byte("cert-laptop")}}, Requested: t0, Effective: t0.Add(time.Hour)}
	}
	notice := func(id string) store.DirNotice {
		return store.DirNotice{DeviceID: phone.ID, Kind: store.DirNoticeReplacement, E164: e.E164, Ref: id, FromDevice: "laptop",
			Effective: t0.Add(time.Hour), Created: t0, Expires: t0.Add(48 * time.Hour)}
	}
	if err := db.AddDirReplacement(ctx, rep("R1"), []store.DirNotice{notice("R1")}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddDirReplacement(ctx, rep("R2"), []store.DirNotice{notice("R2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DirReplacement(ctx, "R1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the earlier replacement: %v", err)
	}
	if r, err := db.DirReplacementFor(ctx, e.E164); err != nil || r.ID != "R2" || !r.Effective.Equal(t0.Add(time.Hour)) || len(r.Keys) != 1 {
		t.Fatalf("pending: %+v %v", r, err)
	}
	if changed, err := db.ApplyDueDirReplacements(ctx, t0.Add(59*time.Minute)); err != nil || len(changed) != 0 {
		t.Fatalf("before the delay: %v %v", changed, err)
	}
	if err := db.DeleteDirReplacement(ctx, "R2"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteDirReplacement(ctx, "R2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("cancel twice: %v", err)
	}
	if ns, _ := db.TakeDirNotices(ctx, phone.ID, "", t0); len(ns) != 0 {
		t.Fatalf("notices of a cancelled replacement: %+v", ns)
	}
	if err := db.AddDirReplacement(ctx, rep("R3"), []store.DirNotice{notice("R3")}); err != nil {
		t.Fatal(err)
	}
	changed, err := db.ApplyDueDirReplacements(ctx, t0.Add(time.Hour))
	if err != nil || len(changed) != 2 || changed[0] != e.E164 || changed[1] != "+420123456780" {
		t.Fatalf("after the delay: %v %v", changed, err)
	}
	got, _ := db.DirEntry(ctx, e.E164)
	if len(got.Keys) != 1 || got.Keys[0].Device != "laptop" || string(got.Hash) != "h1" || !got.Published.Equal(t0.Add(time.Hour)) {
		t.Fatalf("published replacement: %+v", got)
	}
	// The account's other number switches too; another account's does not.
	if other, _ := db.DirEntry(ctx, "+420123456780"); len(other.Keys) != 1 || other.Keys[0].Device != "laptop" || string(other.Hash) != "h2" {
		t.Fatalf("the account's other number: %+v", other)
	}
	if b, _ := db.DirEntry(ctx, "+420123456781"); len(b.Keys) != 1 || b.Keys[0].Device != "b1" {
		t.Fatalf("another account's number: %+v", b)
	}
	if _, err := db.DirReplacementFor(ctx, e.E164); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replacement after publication: %v", err)
	}
	if ns, _ := db.TakeDirNotices(ctx, phone.ID, "", t0.Add(2*time.Hour)); len(ns) != 1 || ns[0].Ref != "R3" || !ns[0].Effective.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the phone's notice after publication: %+v", ns)
	}
}

// The budget holds under parallel spending from several nodes and renews
// with its window.
func testSpendDirBudget(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	d := device(t, db, "alpha@x.org", "a1")
	now := time.Unix(1_900_000_000, 0)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 24; i++ {
		h := db
		if i%3 == 1 {
			h = open(t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h.SpendDirBudget(ctx, d.ID, 1, 10, time.Minute, now); err == nil {
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
	if _, err := db.SpendDirBudget(ctx, d.ID, 11, 10, time.Minute, now.Add(5*time.Minute)); !errors.Is(err, store.ErrBudget) {
		t.Fatalf("more than the budget at once: %v", err)
	}
}

// populateDirectory adds a published number, a claim with its notices, a
// pending replacement with its notice and a spent budget, for the copy.
func populateDirectory(t testing.TB, st store.Store, a1, a2 store.Device, now time.Time) {
	t.Helper()
	ctx := context.Background()
	e := dirEntry(a1, "alpha@x.org", "+420123456789", "hash-1", now)
	c := dirClaim("claim-1", a1, "+420123456780", now)
	r := store.DirReplacement{ID: "repl-1", E164: e.E164, AccountID: a2.AccountID, DeviceID: a2.ID, AOR: "alpha@x.org",
		Keys: []store.DirKey{{Device: "a2", Cert: []byte("cert-a2")}}, Requested: now, Effective: now.Add(time.Hour)}
	for _, err := range []error{
		st.PublishDir(ctx, e),
		st.CreateDirClaim(ctx, c, []store.DirNotice{codeNotice(a1, c), codeNotice(a2, c)}, 3, now),
		st.AddDirReplacement(ctx, r, []store.DirNotice{{DeviceID: a1.ID, Kind: store.DirNoticeReplacement, E164: e.E164, Ref: r.ID, FromDevice: "a2",
			Effective: r.Effective, Created: now, Expires: now.Add(48 * time.Hour)}}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SpendDirBudget(ctx, a1.ID, 3, 10, time.Hour, now); err != nil {
		t.Fatal(err)
	}
}
