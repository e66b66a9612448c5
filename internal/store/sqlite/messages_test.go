package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// Many senders racing for the last bytes of a quota: exactly as many fit as
// the quota allows, never more.
func TestEnqueueQuotaIsAtomic(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	const size, fits, tries = 1000, 7, 40
	body := make([]byte, size)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := 0; i < tries; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, err := db.EnqueueMessage(ctx, store.Message{Sender: fmt.Sprintf("s%d@x.org", i), SenderDevice: "d", Recipient: "rcpt@x.org",
				ContentType: "t", Body: body, Created: time.Now()}, []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}, fits*size)
			mu.Lock()
			defer mu.Unlock()
			var sf *store.StorageFullError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &sf) && sf.AccountID == r.AccountID && errors.Is(err, store.ErrStorageFull):
				full++
			default:
				t.Errorf("enqueue %d: %v", i, err)
			}
		}(i)
	}
	wg.Wait()
	held, err := db.StoredBytes(ctx, r.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	if ok != fits || full != tries-fits || held != fits*size {
		t.Fatalf("accepted %d, refused %d, held %d bytes; want %d accepted, %d bytes", ok, full, held, fits, fits*size)
	}
}

// Copies for the sender's own devices count against, and are checked
// against, the sender's account.
func TestEnqueueQuotaPerTargetAccount(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	s2 := device(t, db, "send@x.org", "s2")
	s3 := device(t, db, "send@x.org", "s3")
	targets := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}, {DeviceID: s2.ID, AccountID: s2.AccountID}, {DeviceID: s3.ID, AccountID: s3.AccountID}}
	msg := store.Message{Sender: "send@x.org", SenderDevice: "s1", Recipient: "rcpt@x.org", ContentType: "t", Body: make([]byte, 600), Created: time.Now()}
	// The recipient's one copy fits in 1000 bytes, the sender's two do not.
	_, err := db.EnqueueMessage(ctx, msg, targets, 1000)
	var sf *store.StorageFullError
	if !errors.As(err, &sf) || sf.AccountID != s2.AccountID {
		t.Fatalf("sender over quota: %v", err)
	}
	for _, a := range []int64{r.AccountID, s2.AccountID} {
		if n, _ := db.StoredBytes(ctx, a); n != 0 {
			t.Fatalf("refused message left %d bytes for account %d", n, a)
		}
	}
	if _, err := db.EnqueueMessage(ctx, msg, targets, 1200); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.StoredBytes(ctx, s2.AccountID); n != 1200 {
		t.Fatalf("sender holds %d bytes, want 1200", n)
	}
}

// One sender's backlog does not hold up another sender; each sender's
// copies keep their order.
func TestPendingTakesTurns(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	r := device(t, db, "rcpt@x.org", "r1")
	tg := []store.Target{{DeviceID: r.ID, AccountID: r.AccountID}}
	put := func(sender string, n int) {
		for i := 0; i < n; i++ {
			if _, err := db.EnqueueMessage(ctx, store.Message{Sender: sender, SenderDevice: "d", Recipient: "rcpt@x.org", ContentType: "t",
				Body: []byte(fmt.Sprintf("%s %d", sender, i)), Created: time.Now()}, tg, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("a@x.org", 500)
	put("b@x.org", 2)
	put("c@x.org", 1)
	ds, err := db.Pending(ctx, r.ID, 6)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, string(d.Body))
	}
	want := []string{"a@x.org 0", "b@x.org 0", "c@x.org 0", "a@x.org 1", "b@x.org 1", "a@x.org 2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pending %q, want %q", got, want)
	}
	// Once delivered, the next turn starts from what is left.
	for _, d := range ds {
		if err := db.Delivered(ctx, d.Seq); err != nil {
			t.Fatal(err)
		}
	}
	ds, _ = db.Pending(ctx, r.ID, 3)
	if len(ds) != 3 || string(ds[0].Body) != "a@x.org 3" || string(ds[2].Body) != "a@x.org 5" {
		t.Fatalf("after delivery: %d copies, first %q", len(ds), ds[0].Body)
	}
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

// The per-account byte count follows every way a copy goes: delivered,
// its device's account removed.
func TestStoredBytesFollowsDeletes(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	b1 := device(t, db, "bravo@x.org", "b1")
	b2 := device(t, db, "bravo@x.org", "b2")
	c1 := device(t, db, "carol@x.org", "c1")
	truth := func(acct int64) int64 {
		var n int64
		db.db.QueryRow(`SELECT COALESCE(SUM(size), 0) FROM deliveries WHERE account_id=?`, acct).Scan(&n)
		return n
	}
	check := func(when string) {
		t.Helper()
		for _, a := range []int64{b1.AccountID, c1.AccountID} {
			if n, err := db.StoredBytes(ctx, a); err != nil || n != truth(a) {
				t.Fatalf("%s: account %d holds %d bytes by the count, %d by the copies (%v)", when, a, n, truth(a), err)
			}
		}
	}
	tg := []store.Target{{DeviceID: b1.ID, AccountID: b1.AccountID}, {DeviceID: b2.ID, AccountID: b2.AccountID}, {DeviceID: c1.ID, AccountID: c1.AccountID}}
	for i := 0; i < 5; i++ {
		if _, err := db.EnqueueMessage(ctx, store.Message{Sender: "a@x.org", SenderDevice: "d", Recipient: "bravo@x.org", ContentType: "t",
			Body: make([]byte, 100+i), Created: time.Now()}, tg, 0); err != nil {
			t.Fatal(err)
		}
	}
	check("stored")
	ds, _ := db.Pending(ctx, b1.ID, 2)
	for _, d := range ds {
		db.Delivered(ctx, d.Seq)
	}
	check("delivered")
	if err := db.DeleteAccount(ctx, "bravo@x.org"); err != nil {
		t.Fatal(err)
	}
	check("account removed")
	if n, _ := db.StoredBytes(ctx, b1.AccountID); n != 0 {
		t.Fatalf("removed account holds %d bytes", n)
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
