package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func init() {
	add("accounts",
		test{"Reopen", testReopen},
		test{"AccountsAndDevices", testAccountsAndDevices},
		test{"ActiveDevices", testActiveDevices},
		test{"CodesAndEnroll", testCodesAndEnroll},
		test{"AttemptsAndContacts", testAttemptsAndContacts},
		test{"TryAttemptIsAtomic", testTryAttemptIsAtomic},
		test{"TryAttemptOverlappingSubjects", testTryAttemptOverlapping},
		test{"SpendNonce", testSpendNonce},
		test{"SpendNonceConcurrent", testSpendNonceConcurrent},
	)
}

// A second handle (a restarted node) finds what the first stored, and
// opening an up-to-date database applies nothing again.
func testReopen(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.CreateAccount(ctx, "alpha@x.org", time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for i := 0; i < 2; i++ {
		again := open(t)
		if a, err := again.Account(ctx, "alpha@x.org"); err != nil || a.Name != "alpha@x.org" {
			t.Fatalf("open %d: %+v %v", i, a, err)
		}
		again.Close()
	}
}

func testAccountsAndDevices(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	now := time.Unix(1_800_000_000, 123)
	a, _ := db.CreateAccount(ctx, "alpha@x.org", now)
	db.CreateAccount(ctx, "charlie@x.org", now)
	sec := store.AccountSecrets{KDF: []byte(`{"n":1}`), Salts: []byte("salts"), SealedOPRF: []byte{0, 1, 0xff}, AuthPub: []byte("pub")}
	if err := db.SetAccountSecrets(ctx, a.ID, sec); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAccountSecrets(ctx, 9999, sec); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("secrets of a missing account: %v", err)
	}
	got, _ := db.Account(ctx, "alpha@x.org")
	if got.Status != store.StatusActive || !bytes.Equal(got.Secrets.SealedOPRF, sec.SealedOPRF) || !got.Created.Equal(now) {
		t.Errorf("account after secrets: %+v", got)
	}
	if err := db.SetAccountStatus(ctx, "charlie@x.org", store.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAccountStatus(ctx, "nobody@x.org", store.StatusDisabled); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("status of a missing account: %v", err)
	}
	if _, err := db.Account(ctx, "nobody@x.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing account: %v", err)
	}
	all, err := db.Accounts(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "alpha@x.org" || all[1].Status != store.StatusDisabled {
		t.Fatalf("accounts: %+v %v", all, err)
	}

	d := store.Device{AccountID: a.ID, Name: "laptop", Handle: "h1", Suite: "ec", Serial: "01", Cert: []byte{1}, KexCert: []byte{2},
		SealedOPRF: []byte{3}, NotAfter: now.Add(time.Hour), Created: now}
	d1, err := db.CreateDevice(ctx, d)
	if err != nil || d1.ID == 0 || d1.Status != store.StatusActive {
		t.Fatalf("create device: %+v %v", d1, err)
	}
	if _, err := db.CreateDevice(ctx, d); !errors.Is(err, store.ErrExists) {
		t.Errorf("same device twice: %v", err)
	}
	d.Name, d.Handle, d.KexCert = "phone", "h2", nil
	d2, _ := db.CreateDevice(ctx, d)

	byHandle, err := db.DeviceByHandle(ctx, "h1")
	if err != nil || byHandle.ID != d1.ID || byHandle.Account != "alpha@x.org" || !byHandle.NotAfter.Equal(now.Add(time.Hour)) {
		t.Errorf("by handle: %+v %v", byHandle, err)
	}
	if _, err := db.DeviceByHandle(ctx, "h9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing handle: %v", err)
	}
	if err := db.UpdateDeviceCert(ctx, d1.ID, "02", []byte{9}, []byte{8}, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDeviceOPRF(ctx, d2.ID, []byte("sealed2")); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDeviceCaps(ctx, d2.ID, "m.v2,c.zrtp"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetDeviceStatus(ctx, d2.ID, store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"cert":   db.UpdateDeviceCert(ctx, 9999, "x", nil, nil, now),
		"oprf":   db.SetDeviceOPRF(ctx, 9999, nil),
		"caps":   db.SetDeviceCaps(ctx, 9999, ""),
		"status": db.SetDeviceStatus(ctx, 9999, store.StatusRevoked),
	} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of a missing device: %v", name, err)
		}
	}
	devs, err := db.Devices(ctx, a.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("devices: %+v %v", devs, err)
	}
	laptop, phone := devs[0], devs[1]
	if laptop.Name != "laptop" || laptop.Serial != "02" || !bytes.Equal(laptop.KexCert, []byte{8}) || !laptop.NotAfter.Equal(now.Add(2*time.Hour)) {
		t.Errorf("laptop: %+v", laptop)
	}
	if phone.Status != store.StatusRevoked || phone.Caps != "m.v2,c.zrtp" || string(phone.SealedOPRF) != "sealed2" || phone.KexCert != nil {
		t.Errorf("phone: %+v", phone)
	}

	// ChangePassword is all or nothing: a device of another account
	// leaves the account's material as it was.
	b, _ := db.CreateAccount(ctx, "bravo@x.org", now)
	newSec := store.AccountSecrets{KDF: []byte("k2"), Salts: []byte("s2"), SealedOPRF: []byte("o2"), AuthPub: []byte("pub2")}
	if err := db.ChangePassword(ctx, b.ID, newSec, d1.ID, []byte("dev2")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("change password with another account's device: %v", err)
	}
	if acct, _ := db.Account(ctx, "bravo@x.org"); acct.Secrets.AuthPub != nil {
		t.Errorf("a failed password change stored the account's material: %+v", acct.Secrets)
	}
	db.TryAttempt(ctx, now, []store.AttemptSubject{{Subject: store.SubjectDevice, ID: d1.ID}, {Subject: store.SubjectAccount, ID: a.ID}},
		func([]store.Attempts) error { return nil })
	if err := db.ChangePassword(ctx, a.ID, newSec, d1.ID, []byte("dev2")); err != nil {
		t.Fatal(err)
	}
	acct, _ := db.Account(ctx, "alpha@x.org")
	dev, _ := db.DeviceByName(ctx, "alpha@x.org", "laptop")
	if string(acct.Secrets.AuthPub) != "pub2" || acct.Attempt.Failures != 0 || string(dev.SealedOPRF) != "dev2" || dev.Attempt.Failures != 0 {
		t.Errorf("after password change: %+v %+v", acct, dev)
	}
	if _, err := db.DeviceByName(ctx, "alpha@x.org", "tablet"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing device by name: %v", err)
	}

	// Deleting the account takes its devices with it.
	if err := db.DeleteAccount(ctx, "alpha@x.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeviceByHandle(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("device of a deleted account: %v", err)
	}
	if err := db.DeleteAccount(ctx, "alpha@x.org"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete twice: %v", err)
	}
}

// Routing's device list is the active devices of the account, with their
// suites, by name, and nothing else.
func testActiveDevices(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	a, err := db.CreateAccount(ctx, "owner@x.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := db.CreateAccount(ctx, "other@x.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	mk := func(acct int64, name, suite string) store.Device {
		d, err := db.CreateDevice(ctx, store.Device{AccountID: acct, Name: name, Handle: fmt.Sprint(acct, name), Suite: suite, Serial: "01",
			Cert: []byte{1}, SealedOPRF: []byte{}, Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	laptop, phone, gone := mk(a.ID, "b-laptop", "ec"), mk(a.ID, "a-phone", "sip"), mk(a.ID, "c-old", "ec")
	mk(other.ID, "x", "ec")
	if err := db.SetDeviceStatus(ctx, gone.ID, store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	got, err := db.ActiveDevices(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.DeviceRef{{ID: phone.ID, Suite: "sip"}, {ID: laptop.ID, Suite: "ec"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("active devices %v, want %v", got, want)
	}
}

func testCodesAndEnroll(t *testing.T, open Opener) {
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
	// A released claim frees the code for another session at once.
	if err := db.ReleaseCode(ctx, hash, winner); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimCode(ctx, hash, a.ID, "other", now.Add(time.Minute), now); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if err := db.ReleaseCode(ctx, hash, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ClaimCode(ctx, hash, a.ID, winner, now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	d := store.Device{AccountID: a.ID, Name: "laptop", Handle: "h1", Suite: "ec", Serial: "01", Cert: []byte{1}, SealedOPRF: []byte{2}, NotAfter: now.Add(time.Hour), Created: now}
	if _, err := db.Enroll(ctx, hash, "not-the-claimant", store.AccountSecrets{}, d, now); !errors.Is(err, store.ErrCodeBusy) {
		t.Fatalf("enroll by a non-claimant: %v", err)
	}
	dev, err := db.Enroll(ctx, hash, winner, store.AccountSecrets{AuthPub: []byte("pub")}, d, now)
	if err != nil || dev.ID == 0 || dev.Status != store.StatusActive {
		t.Fatalf("enroll: %+v %v", dev, err)
	}
	if _, err := db.ClaimCode(ctx, hash, a.ID, "later", now.Add(time.Minute), now); !errors.Is(err, store.ErrCodeUsed) {
		t.Fatalf("used code: %v", err)
	}
	got, err := db.Account(ctx, "alpha@x.org")
	if err != nil || got.Status != store.StatusActive || string(got.Secrets.AuthPub) != "pub" {
		t.Fatalf("account after enroll: %+v %v", got, err)
	}
	// Enroll is all or nothing: a device name already taken leaves the
	// code unused.
	second := []byte("second-code")
	db.AddCode(ctx, a.ID, second, now.Add(time.Hour))
	if _, err := db.ClaimCode(ctx, second, a.ID, "s2", now.Add(time.Minute), now); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Enroll(ctx, second, "s2", store.AccountSecrets{}, d, now); !errors.Is(err, store.ErrExists) {
		t.Fatalf("enroll of a taken device name: %v", err)
	}
	if _, err := db.ClaimCode(ctx, second, a.ID, "s2", now.Add(time.Minute), now); err != nil {
		t.Fatalf("code after a failed enroll: %v", err)
	}
	expired := []byte("expired")
	db.AddCode(ctx, b.ID, expired, now.Add(-time.Second))
	if _, err := db.ClaimCode(ctx, expired, b.ID, "s", now.Add(time.Minute), now); !errors.Is(err, store.ErrCodeExpired) {
		t.Fatalf("expired code: %v", err)
	}
}

func testAttemptsAndContacts(t *testing.T, open Opener) {
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
	if got, _ := db.Account(ctx, "alpha@x.org"); got.Attempt.Failures != 3 || got.Login.Failures != 0 || !got.Attempt.Last.Equal(now) {
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
	if _, err := db.TryAttempt(ctx, now, []store.AttemptSubject{{Subject: store.SubjectDevice, ID: 9999}}, allow); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("attempt on a missing device: %v", err)
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

// 200 attempts race for 3 free ones: the judge sees the counter each
// increment starts from, so exactly 3 get through.
func testTryAttemptIsAtomic(t *testing.T, open Opener) {
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

// Attempts naming the same counters in different orders (device and
// account, account and device) from two handles neither deadlock nor lose
// a count.
func testTryAttemptOverlapping(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	other := open(t)
	d := device(t, db, "alpha@x.org", "a1")
	fwd := []store.AttemptSubject{{Subject: store.SubjectDevice, ID: d.ID}, {Subject: store.SubjectAccount, ID: d.AccountID}, {Subject: store.SubjectLogin, ID: d.AccountID}}
	rev := []store.AttemptSubject{fwd[2], fwd[1], fwd[0]}
	const n = 50
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h, subj := db, fwd
			if i%2 == 1 {
				h, subj = other, rev
			}
			if _, err := h.TryAttempt(ctx, time.Now(), subj, func([]store.Attempts) error { return nil }); err != nil {
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	acct, _ := db.Account(ctx, "alpha@x.org")
	dev, _ := db.DeviceByName(ctx, "alpha@x.org", "a1")
	if acct.Attempt.Failures != n || acct.Login.Failures != n || dev.Attempt.Failures != n {
		t.Fatalf("counted %d, %d, %d; want %d each", acct.Attempt.Failures, acct.Login.Failures, dev.Attempt.Failures, n)
	}
}

func testSpendNonce(t *testing.T, open Opener) {
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
	// Once they expire, the next record prunes them: the values can be
	// recorded again (a replay of one would fail its own expiry check
	// before it got here).
	if err := db.SpendNonce(ctx, []byte("late"), t0.Add(3*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := db.SpendNonce(ctx, []byte{7}, t0.Add(4*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("an expired record was kept: %v", err)
	}
}

// One value spent from many goroutines and two handles at once: exactly
// one spend succeeds.
func testSpendNonceConcurrent(t *testing.T, open Opener) {
	ctx := context.Background()
	hs := []store.Store{open(t), open(t)}
	now := time.Now()
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			switch err := hs[i%2].SpendNonce(ctx, []byte("once"), now.Add(time.Minute), now); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrReplayed):
				replayed.Add(1)
			default:
				t.Error(err)
			}
		}(i)
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 39 {
		t.Fatalf("%d spends succeeded, %d replayed; want 1 and 39", ok.Load(), replayed.Load())
	}
}
