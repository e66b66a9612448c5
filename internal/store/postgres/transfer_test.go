package postgres

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"testing"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
	"github.com/phonex/phonex/internal/store/storetest"
)

// derived are the tables a copy leaves out because they follow from the
// copied rows.
var derived = map[string]bool{"stored_bytes": true, "routing_generation": true, "policy_generation": true, "schema_migrations": true}

// Every table and column of the schema is copied or derived, and a column
// takes NULL in the copy exactly when it does in the schema: a migration
// that adds state must add it to store.CopyTables too.
func TestCopyTablesCoverSchema(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	rows, err := db.pool.Query(ctx, `SELECT table_name, column_name, is_nullable='YES' FROM information_schema.columns WHERE table_schema='public' ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string][]string{}
	for rows.Next() {
		var tb, col string
		var null bool
		if err := rows.Scan(&tb, &col, &null); err != nil {
			t.Fatal(err)
		}
		if !derived[tb] {
			have[tb] = append(have[tb], fmt.Sprint(col, map[bool]string{true: "?"}[null]))
		}
	}
	want := map[string][]string{}
	for _, tb := range store.CopyTables {
		for _, c := range tb.Columns {
			want[tb.Name] = append(want[tb.Name], fmt.Sprint(c.Name, map[bool]string{true: "?"}[c.Nullable]))
		}
	}
	for tb := range have {
		sort.Strings(have[tb])
		sort.Strings(want[tb])
	}
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Fatalf("schema %v\ncopied %v", have, want)
	}
}

// A populated SQLite node's store copies into PostgreSQL with everything
// in place, and back.
func TestCopyBetweenSQLiteAndPostgres(t *testing.T) {
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "phonexd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	storetest.Populate(t, lite)
	pg := open(t)
	counts, err := store.Copy(ctx, lite, pg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if counts["deliveries"] == 0 || counts["accounts"] != 3 {
		t.Fatalf("copied %v", counts)
	}
	storetest.CheckCopy(t, lite, pg, counts)
	if _, err := store.Copy(ctx, lite, pg, nil); !errors.Is(err, store.ErrNotEmpty) {
		t.Fatalf("second copy: %v, want ErrNotEmpty", err)
	}

	back, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "back.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if _, err := store.Copy(ctx, pg, back, nil); err != nil {
		t.Fatal(err)
	}
	if err := func() error {
		a, b := map[string]int{}, map[string]int{}
		pg.Dump(ctx, func(tb string, _ []any) error { a[tb]++; return nil })
		back.Dump(ctx, func(tb string, _ []any) error { b[tb]++; return nil })
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return fmt.Errorf("rows per table %v in postgres, %v copied back", a, b)
		}
		return nil
	}(); err != nil {
		t.Fatal(err)
	}
}

// A copy that fails part way leaves the target empty, so it can be run
// again.
func TestFailedCopyLeavesNothing(t *testing.T) {
	ctx := context.Background()
	pg := open(t)
	boom := errors.New("source failed")
	err := pg.Load(ctx, func(put func(string, []any) error) error {
		if err := put("accounts", []any{int64(1), "a@x.org", "active", int64(1), nil, nil, nil, nil, int64(0), int64(0), int64(0), int64(0)}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("load: %v", err)
	}
	if as, _ := pg.Accounts(ctx); len(as) != 0 {
		t.Fatalf("a failed copy left %d accounts", len(as))
	}
}
