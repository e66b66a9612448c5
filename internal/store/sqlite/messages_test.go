package sqlite

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// device makes an account (if new) with one active device.
func device(t testing.TB, db *DB, account, name string) store.Device {
	t.Helper()
	ctx := context.Background()
	a, err := db.Account(ctx, account)
	if errors.Is(err, store.ErrNotFound) {
		a, err = db.CreateAccount(ctx, account, time.Now())
	}
	if err != nil {
		t.Fatal(err)
	}
	d, err := db.CreateDevice(ctx, store.Device{AccountID: a.ID, Name: name, Handle: account + "/" + name, Suite: "ec", Serial: "01",
		Cert: []byte{1}, NotAfter: time.Now().Add(time.Hour), SealedOPRF: []byte{1}, Created: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// BenchmarkPending reads one batch of 64 from a device's backlog of 10,000
// copies from 10 senders: the cost of taking turns.
func BenchmarkPending(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := device(b, db, "rcpt@x.org", "r1")
	tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
	for i := 0; i < 10000; i++ {
		if _, err := db.EnqueueMessage(ctx, store.Message{Sender: fmt.Sprintf("s%d@x.org", i%10), SenderDevice: "d", Recipient: "rcpt@x.org",
			ContentType: "t", Body: make([]byte, 200), Created: time.Now()}, tg, 0); err != nil {
			b.Fatal(err)
		}
	}
	// Past one page Pending is its plain read (which gives up at the 65th
	// copy: "plain") and then the turn-taking query ("turns-query").
	for _, path := range []struct {
		name string
		f    func(context.Context, int64, int) ([]store.Delivery, error)
	}{{"Pending", db.Pending}, {"turns-query", db.pendingTurns}, {"plain", db.pendingAll}} {
		b.Run(path.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if ds, err := path.f(ctx, r.ID, 64); err != nil || (len(ds) != 64 && path.name != "plain") {
					b.Fatal(len(ds), err)
				}
			}
		})
	}
}

// Copies waiting in a database from before 0006 get their sender, so they
// take turns like new ones after the upgrade.
func TestMigrationBackfillsDeliverySender(t *testing.T) {
	ctx := context.Background()
	names := migrationFiles(t)
	var before []string
	for _, n := range names {
		if n < "migrations/0006" {
			before = append(before, n)
		}
	}
	path := t.TempDir() + "/t.db"
	old, err := openWith(ctx, path, migrationsFS(t, before, nil))
	if err != nil {
		t.Fatal(err)
	}
	r := device(t, old, "rcpt@x.org", "r1")
	for i, sender := range []string{"a@x.org", "a@x.org", "a@x.org", "b@x.org"} {
		res, err := old.db.Exec(`INSERT INTO messages(sender, sender_dev, recipient, content_type, body, created) VALUES(?,?,?,?,?,?)`,
			sender, "d", "rcpt@x.org", "t", []byte(fmt.Sprintf("%s %d", sender, i)), time.Now().UnixNano())
		if err != nil {
			t.Fatal(err)
		}
		id, _ := res.LastInsertId()
		if _, err := old.db.Exec(`INSERT INTO deliveries(message_id, device_id, account_id, size) VALUES(?,?,?,?)`, id, r.ID, r.AccountID, 3); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ds, err := db.Pending(ctx, r.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, string(d.Body))
	}
	if want := "[a@x.org 0 b@x.org 3 a@x.org 1 a@x.org 2]"; fmt.Sprint(got) != want {
		t.Fatalf("after the upgrade %v, want %s", got, want)
	}
	if n, err := db.StoredBytes(ctx, r.AccountID); err != nil || n != 4*3 {
		t.Fatalf("stored bytes after the upgrade: %d %v", n, err)
	}
}

// BenchmarkEnqueueWithQuota stores one copy for an account that already
// holds 20,000: the cost of the storage check in the write transaction.
func BenchmarkEnqueueWithQuota(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, b.TempDir()+"/b.db")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := device(b, db, "rcpt@x.org", "r1")
	tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
	m := store.Message{Sender: "s@x.org", SenderDevice: "d", Recipient: "rcpt@x.org", ContentType: "t", Body: make([]byte, 200), Created: time.Now()}
	for i := 0; i < 20000; i++ {
		if _, err := db.EnqueueMessage(ctx, m, tg, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.EnqueueMessage(ctx, m, tg, 1<<40); err != nil {
			b.Fatal(err)
		}
	}
}

// Copies waiting for a revoked device are forgotten: it will never fetch
// them, and they would hold its account's storage for good.
func TestRevokedDeviceCopiesForgotten(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	b1 := device(t, db, "bravo@x.org", "b1")
	b2 := device(t, db, "bravo@x.org", "b2")
	tg := []store.Target{{DeviceID: b1.ID, AccountID: b1.AccountID}, {DeviceID: b2.ID, AccountID: b2.AccountID}}
	shared, _ := db.EnqueueMessage(ctx, store.Message{Sender: "a@x.org", SenderDevice: "d", Recipient: "bravo@x.org", ContentType: "t",
		Body: []byte("both"), Created: time.Now()}, tg, 0)
	db.EnqueueMessage(ctx, store.Message{Sender: "a@x.org", SenderDevice: "d", Recipient: "bravo@x.org", ContentType: "t",
		Body: []byte("b2 only"), Created: time.Now()}, tg[1:], 0)
	if err := db.SetDeviceStatus(ctx, b2.ID, store.StatusRevoked); err != nil {
		t.Fatal(err)
	}
	if ds, _ := db.Pending(ctx, b2.ID, 10); len(ds) != 0 {
		t.Fatalf("%d copies left for the revoked device", len(ds))
	}
	if n, _ := db.StoredBytes(ctx, b1.AccountID); n != 4 {
		t.Fatalf("account holds %d bytes, want the 4 of b1's copy", n)
	}
	var msgs int
	db.db.QueryRow(`SELECT COUNT(*) FROM messages`).Scan(&msgs)
	if ds, _ := db.Pending(ctx, b1.ID, 10); len(ds) != 1 || ds[0].MessageID != shared || msgs != 1 {
		t.Fatalf("b1 pending %d, messages %d", len(ds), msgs)
	}
	if err := db.SetDeviceStatus(ctx, 9999, store.StatusRevoked); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoke a missing device: %v", err)
	}
}
