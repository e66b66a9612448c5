package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("admins",
		test{"Admins", testAdmins},
		test{"AdminFailureConcurrent", testAdminFailureConcurrent},
		test{"NodeCounts", testNodeCounts},
	)
}

func testAdmins(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	now := time.Unix(1_800_000_000, 0)
	a := store.AdminAccount{Name: "root", PassHash: "$argon2id$x", TOTPSecret: []byte("12345678901234567890"), Created: now}
	if err := s.CreateAdmin(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAdmin(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	// Lock-out after three failures; a locked admin is not counted further.
	for i := 1; i <= 3; i++ {
		got, err := s.AdminFailure(ctx, "root", now, 3, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if locked := now.Before(got.LockedUntil); locked != (i == 3) {
			t.Fatalf("failure %d: locked %v", i, locked)
		}
	}
	if _, err := s.AdminFailure(ctx, "root", now.Add(30*time.Second), 3, time.Minute); !errors.Is(err, store.ErrAdminLocked) {
		t.Fatalf("locked: %v", err)
	}
	if _, err := s.AdminFailure(ctx, "root", now.Add(2*time.Minute), 3, time.Minute); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	// A TOTP step is accepted once, and never an older one.
	if err := s.AdminSignedIn(ctx, "root", 100); err != nil {
		t.Fatal(err)
	}
	for _, step := range []int64{100, 99} {
		if err := s.AdminSignedIn(ctx, "root", step); !errors.Is(err, store.ErrReplayed) {
			t.Fatalf("step %d again: %v", step, err)
		}
	}
	if err := s.AdminSignedIn(ctx, "nobody", 5); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown admin: %v", err)
	}
	sess := store.AdminSession{IDHash: []byte("h1"), Admin: "root", CSRF: []byte("c"), Created: now, Seen: now, AuthAt: now}
	if err := s.CreateAdminSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAdminSession(ctx, []byte("h1"), now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.AdminSession(ctx, []byte("h1"))
	if err != nil || got.Admin != "root" || !got.Seen.Equal(now.Add(time.Minute)) {
		t.Fatalf("session: %+v %v", got, err)
	}
	if n, err := s.PruneAdminSessions(ctx, now, now); err != nil || n != 0 {
		t.Fatalf("prune fresh: %d %v", n, err)
	}
	if n, err := s.PruneAdminSessions(ctx, now.Add(2*time.Minute), now); err != nil || n != 1 {
		t.Fatalf("prune idle: %d %v", n, err)
	}
	// Reset ends the sessions and the lock-out.
	s.CreateAdminSession(ctx, sess)
	if err := s.ResetAdmin(ctx, "root", "$argon2id$y", []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdminSession(ctx, []byte("h1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after reset: %v", err)
	}
	if err := s.DeleteAdmin(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAdmin(ctx, "root"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}

}

// Concurrent failed sign-ins, from several nodes, are each counted: the
// lock-out comes at exactly lockAfter.
func testAdminFailureConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	a, b := open(t), open(t)
	now := time.Unix(1_800_000_000, 0)
	if err := a.CreateAdmin(ctx, store.AdminAccount{Name: "root", PassHash: "h", TOTPSecret: []byte("k"), Created: now}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var locked atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := []store.Store{a, b}[i%2]
			got, err := s.AdminFailure(ctx, "root", now, 8, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if now.Before(got.LockedUntil) {
				locked.Add(1)
			}
		}()
	}
	wg.Wait()
	if locked.Load() != 1 {
		t.Fatalf("%d failures saw the lock-out start, want exactly 1", locked.Load())
	}
	if _, err := a.AdminFailure(ctx, "root", now, 8, time.Minute); !errors.Is(err, store.ErrAdminLocked) {
		t.Fatalf("after 8 failures: %v", err)
	}
}

// NodeCounts counts accounts by status, devices, revoked ones and waiting
// copies.
func testNodeCounts(t *testing.T, open Opener) {
	ctx := context.Background()
	s := open(t)
	d := device(t, s, "alpha@example.org", "laptop")
	phone := device(t, s, "alpha@example.org", "phone")
	if _, err := s.CreateAccount(ctx, "bravo@example.org", time.Now()); err != nil {
		t.Fatal(err)
	}
	s.SetAccountStatus(ctx, "alpha@example.org", store.StatusActive)
	s.SetAccountStatus(ctx, "bravo@example.org", store.StatusDisabled)
	if _, err := s.EnqueueMessage(ctx, store.Message{Sender: "bravo@example.org", SenderDevice: "x", Recipient: "alpha@example.org", ContentType: "t", Body: []byte("12345"), Created: time.Now()},
		[]store.Target{{DeviceID: d.ID, AccountID: d.AccountID}}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetDeviceStatus(ctx, phone.ID, store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	c, err := s.NodeCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := store.NodeCounts{Accounts: 2, Disabled: 1, Devices: 2, Revoked: 1, MessagesWaiting: 1, BytesWaiting: 5}
	if c != want {
		t.Fatalf("counts %+v, want %+v", c, want)
	}
}
