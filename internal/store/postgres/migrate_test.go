package postgres

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/testpg"
)

// The two stores' migrations are versioned together: the same version
// numbers in both directories, so a schema change is made in both.
func TestMigrationVersionsMatchSQLite(t *testing.T) {
	pg, err := Versions(migrations)
	if err != nil {
		t.Fatal(err)
	}
	lite, err := Versions(os.DirFS("../sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	var a, b []int
	for _, m := range pg {
		a = append(a, m.Version)
	}
	for _, m := range lite {
		b = append(b, m.Version)
	}
	if len(a) == 0 || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("postgres migrations %v, sqlite migrations %v", a, b)
	}
}

// Nodes starting at once on an empty database: one applies the
// migrations, the others wait for it and apply nothing again.
func TestConcurrentMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i := 0; i < cap(errs); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(ctx, dsn)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db := open2(t, dsn)
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	list, _ := Versions(migrations)
	if n != len(list) {
		t.Fatalf("%d migrations recorded, want %d", n, len(list))
	}
}

func open2(t *testing.T, dsn string) *DB {
	t.Helper()
	db, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A migration that fails is rolled back whole, recorded as not applied,
// and applied once fixed.
func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	fsys := fstest.MapFS{}
	list, _ := Versions(migrations)
	for _, m := range list {
		b, _ := migrations.ReadFile(m.Path)
		fsys[m.Path] = &fstest.MapFile{Data: b}
	}
	fsys["migrations/9999_broken.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE half (n int); ALTER TABLE accounts ADD COLUMN name TEXT;`)}
	if err := db.migrate(ctx, fsys); err == nil {
		t.Fatal("a broken migration applied")
	}
	var n int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename='half'`).Scan(&n)
	var recorded int
	db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version=9999`).Scan(&recorded)
	if n != 0 || recorded != 0 {
		t.Fatalf("after a failed migration: table %d, recorded %d", n, recorded)
	}
	fsys["migrations/9999_broken.sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE half (n int);`)}
	if err := db.migrate(ctx, fsys); err != nil {
		t.Fatal(err)
	}
	db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version=9999`).Scan(&recorded)
	if recorded != 1 {
		t.Fatal("fixed migration not recorded")
	}
}

// The two copies of a message acknowledged at the same moment by two
// nodes: the body goes with the last of them, never stays behind.
func TestConcurrentDeliveredForgetsBody(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	a, b := open2(t, dsn), open2(t, dsn)
	acct, err := a.CreateAccount(ctx, "rcpt@x.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var devs []store.Device
	for _, n := range []string{"r1", "r2"} {
		d, err := a.CreateDevice(ctx, store.Device{AccountID: acct.ID, Name: n, Handle: n, Suite: "ec", Serial: "1", Cert: []byte{1}, SealedOPRF: []byte{1}, Created: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	tg := []store.Target{{DeviceID: devs[0].ID, AccountID: acct.ID}, {DeviceID: devs[1].ID, AccountID: acct.ID}}
	for i := 0; i < 30; i++ {
		if _, err := a.EnqueueMessage(ctx, store.Message{Sender: "s@x.org", SenderDevice: "d", Recipient: "rcpt@x.org", ContentType: "t",
			Body: []byte("x"), Created: time.Now()}, tg, 0); err != nil {
			t.Fatal(err)
		}
	}
	p1, _ := a.Pending(ctx, devs[0].ID, 100)
	p2, _ := b.Pending(ctx, devs[1].ID, 100)
	if len(p1) != 30 || len(p2) != 30 {
		t.Fatalf("pending %d and %d", len(p1), len(p2))
	}
	var wg sync.WaitGroup
	for i := range p1 {
		wg.Add(2)
		go func() { defer wg.Done(); a.Delivered(ctx, p1[i].Seq) }()
		go func() { defer wg.Done(); b.Delivered(ctx, p2[i].Seq) }()
	}
	wg.Wait()
	var bodies int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM messages`).Scan(&bodies); err != nil || bodies != 0 {
		t.Fatalf("%d bodies left after every copy was delivered (%v)", bodies, err)
	}
}

// upTo is the embedded migrations before version v.
func upTo(t *testing.T, v int) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	list, err := Versions(migrations)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list {
		if m.Version < v {
			b, _ := migrations.ReadFile(m.Path)
			fsys[m.Path] = &fstest.MapFile{Data: b}
		}
	}
	return fsys
}

// Copies waiting in a database from before 0006 get their sender and
// their bytes counted, so they take turns and count against the quota
// like new ones after the upgrade.
func TestMigrationBackfillsDeliverySender(t *testing.T) {
	ctx := context.Background()
	dsn := testpg.DSN(t)
	old := &DB{}
	var err error
	if old.pool, err = pgxpool.New(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	if err := old.migrate(ctx, upTo(t, 6)); err != nil {
		t.Fatal(err)
	}
	var acct, dev int64
	if err := old.pool.QueryRow(ctx, `INSERT INTO accounts(name, status, created) VALUES('rcpt@x.org','active',1) RETURNING id`).Scan(&acct); err != nil {
		t.Fatal(err)
	}
	if err := old.pool.QueryRow(ctx, `INSERT INTO devices(account_id, name, handle, suite, serial, cert, not_after, status, sealed_oprf, created)
		VALUES($1,'r1','h','ec','1','\x01',1,'active','\x01',1) RETURNING id`, acct).Scan(&dev); err != nil {
		t.Fatal(err)
	}
	for i, sender := range []string{"a@x.org", "a@x.org", "a@x.org", "b@x.org"} {
		var id int64
		if err := old.pool.QueryRow(ctx, `INSERT INTO messages(sender, sender_dev, recipient, content_type, body, created) VALUES($1,'d','rcpt@x.org','t',$2,1) RETURNING id`,
			sender, []byte(fmt.Sprintf("%s %d", sender, i))).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if _, err := old.pool.Exec(ctx, `INSERT INTO deliveries(message_id, device_id, account_id, size) VALUES($1,$2,$3,3)`, id, dev, acct); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	db := open2(t, dsn)
	ds, err := db.Pending(ctx, dev, 10)
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
	if n, err := db.StoredBytes(ctx, acct); err != nil || n != 4*3 {
		t.Fatalf("stored bytes after the upgrade: %d %v", n, err)
	}
}
