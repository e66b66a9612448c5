package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
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

func TestMigrationsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	for i := 0; i < 2; i++ {
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		db.Close()
	}
}

func TestCodesAndEnroll(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	now := time.Now()
	a, err := db.CreateAccount(ctx, "alpha@x.org", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateAccount(ctx, "alpha@x.org", now); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate account: %v", err)
	}
	b, _ := db.CreateAccount(ctx, "bravo@x.org", now)
	hash := []byte("hash-of-code")
	if err := db.AddCode(ctx, a.ID, hash, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimCode(ctx, hash, b.ID, "s0", now.Add(time.Minute), now); !errors.Is(err, store.ErrCodeInvalid) {
		t.Fatalf("claim by another account: %v", err)
	}
	// Concurrent claims: one wins, the rest see it busy.
	var wg sync.WaitGroup
	results := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := db.ClaimCode(ctx, hash, a.ID, string(rune('a'+i)), now.Add(time.Minute), now)
			results <- err
		}(i)
	}
	wg.Wait()
	close(results)
	wins, winner := 0, ""
	for err := range results {
		if err == nil {
			wins++
		} else if !errors.Is(err, store.ErrCodeBusy) {
			t.Fatalf("claim: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d claims won", wins)
	}
	for i := 0; i < 8 && winner == ""; i++ {
		s := string(rune('a' + i))
		if _, err := db.ClaimCode(ctx, hash, a.ID, s, now.Add(time.Minute), now); err == nil {
			winner = s
		}
	}
	d := store.Device{AccountID: a.ID, Name: "laptop", Handle: "h1", Suite: "ec", Serial: "01", Cert: []byte{1}, SealedOPRF: []byte{2}, NotAfter: now.Add(time.Hour), Created: now}
	if _, err := db.Enroll(ctx, hash, "not-the-claimant", store.AccountSecrets{}, d, now); !errors.Is(err, store.ErrCodeBusy) {
		t.Fatalf("enroll by a non-claimant: %v", err)
	}
	if _, err := db.Enroll(ctx, hash, winner, store.AccountSecrets{AuthPub: []byte("pub")}, d, now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimCode(ctx, hash, a.ID, "later", now.Add(time.Minute), now); !errors.Is(err, store.ErrCodeUsed) {
		t.Fatalf("used code: %v", err)
	}
	got, err := db.Account(ctx, "alpha@x.org")
	if err != nil || got.Status != store.StatusActive || string(got.Secrets.AuthPub) != "pub" {
		t.Fatalf("account after enroll: %+v %v", got, err)
	}
	expired := []byte("expired")
	db.AddCode(ctx, b.ID, expired, now.Add(-time.Second))
	if _, err := db.ClaimCode(ctx, expired, b.ID, "s", now.Add(time.Minute), now); !errors.Is(err, store.ErrCodeExpired) {
		t.Fatalf("expired code: %v", err)
	}
}

func TestAttemptsAndContacts(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	now := time.Now()
	a, _ := db.CreateAccount(ctx, "alpha@x.org", now)
	db.CreateAccount(ctx, "bravo@x.org", now)
	for i := 0; i < 3; i++ {
		before, err := db.RecordAttempt(ctx, store.SubjectAccount, a.ID, now)
		if err != nil || before.Failures != i {
			t.Fatalf("attempt %d: %+v %v", i, before, err)
		}
	}
	if err := db.ResetAttempts(ctx, store.SubjectAccount, a.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Account(ctx, "alpha@x.org"); got.Attempt.Failures != 0 {
		t.Fatal("reset did not reset")
	}
	if _, err := db.RecordAttempt(ctx, "bogus", a.ID, now); err == nil {
		t.Fatal("bogus subject accepted")
	}
	if err := db.AddContact(ctx, a.ID, "bravo@x.org", now); err != nil {
		t.Fatal(err)
	}
	db.AddContact(ctx, a.ID, "bravo@x.org", now) // idempotent
	if cs, _ := db.Contacts(ctx, a.ID); len(cs) != 1 {
		t.Fatalf("contacts %v", cs)
	}
	if ok, _ := db.HasContact(ctx, "alpha@x.org", "bravo@x.org"); !ok {
		t.Fatal("HasContact")
	}
	if ok, _ := db.HasContact(ctx, "bravo@x.org", "alpha@x.org"); ok {
		t.Fatal("contact lists are not symmetric")
	}
	if err := db.DeleteAccount(ctx, "bravo@x.org"); err != nil {
		t.Fatal(err)
	}
	if cs, _ := db.Contacts(ctx, a.ID); len(cs) != 0 {
		t.Fatalf("removed account still a contact: %v", cs)
	}
	if err := db.RemoveContact(ctx, a.ID, "bravo@x.org"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("remove missing contact: %v", err)
	}
}
