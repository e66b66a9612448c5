package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkAccountPage reads one page of 50 accounts (with device counts)
// and the total, from the middle of 100,000 accounts, with and without a
// search: what the admin panel's account list costs the store.
func BenchmarkAccountPage(b *testing.B) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(b.TempDir(), "n.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const n = 100_000
	err = db.tx(ctx, func(tx *sql.Tx) error {
		for i := 0; i < n; i++ {
			if _, err := tx.ExecContext(ctx, `INSERT INTO accounts(name, status, created) VALUES(?, 'active', 1)`, fmt.Sprintf("user%06d@example.org", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, search, after string }{
		{"middle", "", "user050000@example.org"},
		{"search", "user0777", ""},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, err := db.AccountPage(ctx, c.search, c.after, 50)
				if err != nil || len(page) == 0 {
					b.Fatal(err, len(page))
				}
				if _, err := db.CountAccounts(ctx, c.search); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
