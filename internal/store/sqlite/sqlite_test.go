package sqlite

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	acct := []store.AttemptSubject{{Subject: store.SubjectAccount, ID: a.ID}}
	allow := func([]store.Attempts) error { return nil }
	for i := 0; i < 3; i++ {
		before, err := db.TryAttempt(ctx, now, acct, allow)
		if err != nil || before[0].Failures != i {
			t.Fatalf("attempt %d: %+v %v", i, before, err)
		}
	}
	// The login counter is apart from the account's unlock counter.
	if got, _ := db.Account(ctx, "alpha@x.org"); got.Attempt.Failures != 3 || got.Login.Failures != 0 {
		t.Fatalf("counters %+v %+v", got.Attempt, got.Login)
	}
	refuse := errors.New("refused")
	if _, err := db.TryAttempt(ctx, now, acct, func([]store.Attempts) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("refused attempt: %v", err)
	}
	if got, _ := db.Account(ctx, "alpha@x.org"); got.Attempt.Failures != 3 {
		t.Fatalf("a refused attempt was counted: %+v", got.Attempt)
	}
	if err := db.ResetAttempts(ctx, store.SubjectAccount, a.ID); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Account(ctx, "alpha@x.org"); got.Attempt.Failures != 0 {
		t.Fatal("reset did not reset")
	}
	if _, err := db.TryAttempt(ctx, now, []store.AttemptSubject{{Subject: "bogus", ID: a.ID}}, allow); err == nil {
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

// TestTryAttemptIsAtomic lets 200 attempts race for 3 free ones: the judge
// sees the counter each increment starts from, so exactly 3 get through.
func TestTryAttemptIsAtomic(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	now := time.Now()
	a, _ := db.CreateAccount(ctx, "alpha@x.org", now)
	subj := []store.AttemptSubject{{Subject: store.SubjectLogin, ID: a.ID}}
	full := errors.New("no free attempt left")
	var wg sync.WaitGroup
	var passed atomic.Int32
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := db.TryAttempt(ctx, now, subj, func(c []store.Attempts) error {
				if c[0].Failures >= 3 {
					return full
				}
				return nil
			})
			switch {
			case err == nil:
				passed.Add(1)
			case !errors.Is(err, full):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := passed.Load(); n != 3 {
		t.Fatalf("%d attempts passed, want 3", n)
	}
	if got, _ := db.Account(ctx, "alpha@x.org"); got.Login.Failures != 3 || got.Attempt.Failures != 0 {
		t.Fatalf("counters %+v %+v", got.Login, got.Attempt)
	}
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
