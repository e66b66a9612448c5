package sqlite

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

func TestAccountsAndDevices(t *testing.T) {
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

// twoDevices makes an account with two devices.
func twoDevices(t *testing.T, db *DB, name string) (store.Account, store.Device, store.Device) {
	t.Helper()
	ctx := context.Background()
	a, err := db.CreateAccount(ctx, name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ds [2]store.Device
	for i, n := range []string{"one", "two"} {
		ds[i], err = db.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: n, Handle: name + n, Suite: "ec", Serial: "01",
			Cert: []byte{1}, SealedOPRF: []byte{2}, NotAfter: time.Now().Add(time.Hour), Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
	}
	return a, ds[0], ds[1]
}

// TestStoreAndForward queues a message for two devices, delivers it to one,
// survives a reopen, and forgets the body after the last delivery.
func TestStoreAndForward(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	b, b1, b2 := twoDevices(t, db, "bravo@x.org")
	created := time.Unix(1_800_000_000, 42)
	m := store.Message{Sender: "alpha@x.org", SenderDevice: "a1", Recipient: "bravo@x.org", ContentType: "application/x-phonex",
		Body: []byte{0, 1, 2, 0xff, 'x'}, Created: created}
	targets := []store.Target{{DeviceID: b1.ID, AccountID: b.ID}, {DeviceID: b2.ID, AccountID: b.ID}}
	id, err := db.EnqueueMessage(ctx, m, targets, 0)
	if err != nil || id == 0 {
		t.Fatalf("enqueue: %d %v", id, err)
	}
	m2 := m
	m2.Body = []byte("second")
	db.EnqueueMessage(ctx, m2, targets[:1], 0)
	if n, _ := db.StoredBytes(ctx, b.ID); n != int64(2*len(m.Body)+len(m2.Body)) {
		t.Errorf("stored bytes %d", n)
	}
	// A delivery to a device that does not exist is refused and the
	// message with it.
	if _, err := db.EnqueueMessage(ctx, m, []store.Target{{DeviceID: 9999, AccountID: b.ID}}, 0); err == nil {
		t.Error("enqueue to a missing device accepted")
	}
	db.Close()

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p1, err := db.Pending(ctx, b1.ID, 10)
	if err != nil || len(p1) != 2 {
		t.Fatalf("pending for device one after reopen: %+v %v", p1, err)
	}
	if p1[0].MessageID != id || !bytes.Equal(p1[0].Body, m.Body) || !p1[0].Created.Equal(created) || p1[0].Sender != m.Sender ||
		p1[0].SenderDevice != "a1" || p1[0].ContentType != m.ContentType || string(p1[1].Body) != "second" || p1[0].Seq >= p1[1].Seq {
		t.Errorf("pending: %+v", p1)
	}
	if lim, _ := db.Pending(ctx, b1.ID, 1); len(lim) != 1 {
		t.Errorf("limit 1 gave %d", len(lim))
	}
	p2, _ := db.Pending(ctx, b2.ID, 10)
	if len(p2) != 1 {
		t.Fatalf("pending for device two: %+v", p2)
	}
	for _, d := range p1 {
		if err := db.Delivered(ctx, d.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Delivered(ctx, p1[0].Seq); err != nil {
		t.Errorf("second acknowledgement: %v", err)
	}
	var bodies int
	db.db.QueryRow(`SELECT count(*) FROM messages`).Scan(&bodies)
	if bodies != 1 {
		t.Errorf("%d bodies stored, want 1 (device two's copy)", bodies)
	}
	db.Delivered(ctx, p2[0].Seq)
	db.db.QueryRow(`SELECT count(*) FROM messages`).Scan(&bodies)
	if n, _ := db.StoredBytes(ctx, b.ID); bodies != 0 || n != 0 {
		t.Errorf("after every delivery: %d bodies, %d bytes", bodies, n)
	}
}

func TestSIPCredentialsAndPrekeys(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	_, d1, d2 := twoDevices(t, db, "sippy@x.org")
	ha1 := []byte{0xde, 0xad, 0xbe, 0xef}
	if err := db.SetSIPCredential(ctx, d1.ID, "sippy", ha1); err != nil {
		t.Fatal(err)
	}
	if err := db.SetSIPCredential(ctx, d2.ID, "sippy", ha1); !errors.Is(err, store.ErrExists) {
		t.Errorf("username taken twice: %v", err)
	}
	dev, got, err := db.SIPCredential(ctx, "sippy")
	if err != nil || dev.ID != d1.ID || dev.Account != "sippy@x.org" || !bytes.Equal(got, ha1) {
		t.Errorf("credential: %+v %x %v", dev, got, err)
	}
	if _, _, err := db.SIPCredential(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing username: %v", err)
	}

	one := []store.Prekey{{ID: 3, Data: []byte("c")}, {ID: 1, Data: []byte("a")}, {ID: 2, Data: []byte("b")}}
	if err := db.PutKeys(ctx, d1.ID, store.KeyUpload{Add: map[string][]store.Prekey{"onetime": one}}); err != nil {
		t.Fatal(err)
	}
	db.PutKeys(ctx, d1.ID, store.KeyUpload{Replace: map[string]store.Prekey{"signed": {ID: 1, Data: []byte("s1")}}})
	// Rotation replaces the signed key.
	db.PutKeys(ctx, d1.ID, store.KeyUpload{Replace: map[string]store.Prekey{"signed": {ID: 2, Data: []byte("s2'")}}})
	if n, _ := db.CountPrekeys(ctx, d1.ID, "onetime"); n != 3 {
		t.Errorf("%d one-time keys", n)
	}
	// One-time keys go oldest first, once each.
	for _, want := range []string{"a", "b", "c"} {
		k, err := db.TakePrekey(ctx, d1.ID, "onetime", true)
		if err != nil || string(k.Data) != want {
			t.Errorf("take one-time: %+v %v, want %q", k, err, want)
		}
	}
	if _, err := db.TakePrekey(ctx, d1.ID, "onetime", true); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("one-time keys exhausted: %v", err)
	}
	// The signed key is the newest and stays.
	for i := 0; i < 2; i++ {
		if k, err := db.TakePrekey(ctx, d1.ID, "signed", false); err != nil || k.ID != 2 || string(k.Data) != "s2'" {
			t.Errorf("signed key: %+v %v", k, err)
		}
	}
	if n, _ := db.CountPrekeys(ctx, d2.ID, "signed"); n != 0 {
		t.Errorf("another device's keys: %d", n)
	}
	if err := db.PutKeys(ctx, 9999, store.KeyUpload{Add: map[string][]store.Prekey{"onetime": one}}); err == nil {
		t.Error("prekeys for a missing device accepted")
	}
}
