package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// migrationFiles lists the embedded migrations in order.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded migrations: %v %v", names, err)
	}
	sort.Strings(names)
	return names
}

// migrationsFS holds the given embedded migrations plus extra files.
func migrationsFS(t *testing.T, names []string, extra map[string]string) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	for _, n := range names {
		b, err := fs.ReadFile(migrations, n)
		if err != nil {
			t.Fatal(err)
		}
		m[n] = &fstest.MapFile{Data: b}
	}
	for n, body := range extra {
		m["migrations/"+n] = &fstest.MapFile{Data: []byte(body)}
	}
	return m
}

// valueHints gives a column the values its constraints allow when the
// generic ones (below) would be rejected, e.g. by a CHECK. Key "table.col".
var valueHints = map[string]func(row int) any{}

// renamed lists columns a later migration renamed or rewrote on purpose,
// "table.col" to be left out of the survival check. None so far.
var renamed = map[string]bool{}

type column struct {
	name, typ string
	notNull   bool
	pk        int
}

type foreignKey struct{ table, from, to string }

func columns(t *testing.T, db *sql.DB, table string) []column {
	t.Helper()
	rows, err := db.Query(`SELECT name, type, "notnull", pk FROM pragma_table_info(?) ORDER BY cid`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.name, &c.typ, &c.notNull, &c.pk); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	return cols
}

func tables(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out = append(out, n)
	}
	return out
}

func foreignKeys(t *testing.T, db *sql.DB, table string) map[string]foreignKey {
	t.Helper()
	rows, err := db.Query(`SELECT "table", "from", coalesce("to", '') FROM pragma_foreign_key_list(?)`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	fks := map[string]foreignKey{}
	for rows.Next() {
		var fk foreignKey
		rows.Scan(&fk.table, &fk.from, &fk.to)
		fks[fk.from] = fk
	}
	return fks
}

// fill inserts rows into every table of the schema db is at, parents
// before children, with values of each column's declared type (NULL in
// some nullable columns, binary bytes in blobs), and returns the rows as
// stored, defaults included.
func fill(t *testing.T, db *sql.DB, perTable int) map[string][]map[string]any {
	t.Helper()
	all := tables(t, db)
	fks := map[string]map[string]foreignKey{}
	for _, tb := range all {
		fks[tb] = foreignKeys(t, db, tb)
	}
	// Order by foreign keys: a table after every table it references.
	var order []string
	done := map[string]bool{}
	for len(order) < len(all) {
		progress := false
		for _, tb := range all {
			if done[tb] {
				continue
			}
			ready := true
			for _, fk := range fks[tb] {
				if fk.table != tb && !done[fk.table] {
					ready = false
				}
			}
			if ready {
				order, done[tb], progress = append(order, tb), true, true
			}
		}
		if !progress {
			t.Fatalf("foreign keys form a cycle among %v", all)
		}
	}

	stored := map[string][]map[string]any{}
	for _, tb := range order {
		cols := columns(t, db, tb)
		for row := 0; row < perTable; row++ {
			var names, marks []string
			var args []any
			for _, c := range cols {
				v, ok := value(t, db, tb, c, fks[tb][c.name], row)
				if !ok {
					continue // leave it to its default
				}
				names, marks, args = append(names, `"`+c.name+`"`), append(marks, "?"), append(args, v)
			}
			q := fmt.Sprintf(`INSERT INTO "%s" (%s) VALUES (%s)`, tb, strings.Join(names, ", "), strings.Join(marks, ", "))
			res, err := db.Exec(q, args...)
			if err != nil {
				t.Fatalf("insert into %s: %v (give the column a value in valueHints)", tb, err)
			}
			rowid, _ := res.LastInsertId()
			stored[tb] = append(stored[tb], readRow(t, db, tb, rowid))
		}
	}
	return stored
}

// value picks row's value for column c; false leaves the column to its
// default.
func value(t *testing.T, db *sql.DB, table string, c column, fk foreignKey, row int) (any, bool) {
	if h, ok := valueHints[table+"."+c.name]; ok {
		return h(row), true
	}
	if fk.table != "" {
		to := fk.to
		if to == "" {
			to = "rowid"
		}
		var v any
		q := fmt.Sprintf(`SELECT "%s" FROM "%s" ORDER BY rowid LIMIT 1 OFFSET ?`, to, fk.table)
		if err := db.QueryRow(q, row).Scan(&v); err != nil {
			t.Fatalf("%s.%s references %s.%s, which has no row %d: %v", table, c.name, fk.table, to, row, err)
		}
		return v, true
	}
	// Every third row leaves nullable columns NULL and defaulted ones to
	// their default.
	if row%3 == 2 && !c.notNull && c.pk == 0 {
		return nil, true
	}
	typ := strings.ToUpper(c.typ)
	switch {
	case strings.Contains(typ, "INT"):
		if c.pk > 0 {
			return int64(1000 + row), true
		}
		return int64(1_700_000_000_000_000_000 + row*7919), true
	case strings.Contains(typ, "CHAR"), strings.Contains(typ, "TEXT"), strings.Contains(typ, "CLOB"):
		return fmt.Sprintf("%s.%s.%d é", table, c.name, row), true
	case strings.Contains(typ, "REAL"), strings.Contains(typ, "FLOA"), strings.Contains(typ, "DOUB"):
		return float64(row) + 0.25, true
	default: // BLOB or no type
		return append([]byte(fmt.Sprintf("%s.%s.%d", table, c.name, row)), 0, 0xff, byte(row)), true
	}
}

func readRow(t *testing.T, db *sql.DB, table string, rowid int64) map[string]any {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf(`SELECT * FROM "%s" WHERE rowid=?`, table), rowid)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	names, _ := rows.Columns()
	if !rows.Next() {
		t.Fatalf("%s: row %d not found after insert", table, rowid)
	}
	vals := make([]any, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	for i, n := range names {
		m[n] = vals[i]
	}
	return m
}

// TestMigrateWithDataFromEveryVersion migrates a database holding data at
// each earlier schema version to the latest, and checks that every row
// survives with the values of every column that still exists. It reads the
// schema, so new migrations are covered without changing the test.
func TestMigrateWithDataFromEveryVersion(t *testing.T) {
	ctx := context.Background()
	names := migrationFiles(t)
	for k := 1; k <= len(names); k++ {
		from := strings.TrimPrefix(names[k-1], "migrations/")
		t.Run("from "+from, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "t.db")
			old, err := openWith(ctx, path, migrationsFS(t, names[:k], nil))
			if err != nil {
				t.Fatalf("migrate to %s: %v", from, err)
			}
			data := fill(t, old.db, 3)
			old.Close()

			db, err := Open(ctx, path)
			if err != nil {
				t.Fatalf("migrate from %s to the latest: %v", from, err)
			}
			defer db.Close()
			var applied int
			db.db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&applied)
			if applied != len(names) {
				t.Errorf("%d migrations recorded, want %d", applied, len(names))
			}
			latest := map[string]map[string]bool{}
			for _, tb := range tables(t, db.db) {
				latest[tb] = map[string]bool{}
				for _, c := range columns(t, db.db, tb) {
					latest[tb][c.name] = true
				}
			}
			for tb, rows := range data {
				if latest[tb] == nil {
					t.Errorf("table %s with %d rows was dropped", tb, len(rows))
					continue
				}
				for i, row := range rows {
					var conds []string
					var args []any
					for col, v := range row {
						if renamed[tb+"."+col] {
							continue
						}
						if !latest[tb][col] {
							if i == 0 {
								t.Errorf("%s.%s, holding data, was dropped", tb, col)
							}
							continue
						}
						conds, args = append(conds, fmt.Sprintf(`"%s" IS ?`, col)), append(args, v)
					}
					var n int
					q := fmt.Sprintf(`SELECT count(*) FROM "%s" WHERE %s`, tb, strings.Join(conds, " AND "))
					if err := db.db.QueryRow(q, args...).Scan(&n); err != nil {
						t.Fatal(err)
					}
					if n != 1 {
						t.Errorf("%s row %d (%v) did not survive: %d matches", tb, i, row, n)
					}
				}
			}
			for _, pragma := range []string{"integrity_check", "foreign_key_check"} {
				rows, err := db.db.Query("PRAGMA " + pragma)
				if err != nil {
					t.Fatal(err)
				}
				var problems []string
				cols, _ := rows.Columns()
				for rows.Next() {
					vals := make([]any, len(cols))
					ptrs := make([]any, len(cols))
					for i := range vals {
						ptrs[i] = &vals[i]
					}
					rows.Scan(ptrs...)
					if s := fmt.Sprint(vals...); s != "ok" {
						problems = append(problems, s)
					}
				}
				rows.Close()
				if len(problems) > 0 {
					t.Errorf("%s after migration: %v", pragma, problems)
				}
			}
		})
	}
}

// TestFailedMigrationRollsBack runs a migration that fails part way: its
// earlier statements are undone, it is not recorded, the migrations after
// it do not run, the data already there survives, and a fixed set of
// migrations then applies.
func TestFailedMigrationRollsBack(t *testing.T) {
	ctx := context.Background()
	names := migrationFiles(t)
	last, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(names[len(names)-1], "migrations/"), "_", 2)[0])
	broken := fmt.Sprintf("%04d_broken.sql", last+1)
	after := fmt.Sprintf("%04d_after.sql", last+2)
	path := filepath.Join(t.TempDir(), "t.db")

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	data := fill(t, db.db, 2)
	db.Close()

	_, err = openWith(ctx, path, migrationsFS(t, names, map[string]string{
		broken: `CREATE TABLE half_done (x INTEGER);
ALTER TABLE accounts ADD COLUMN half_done TEXT;
UPDATE accounts SET status = 'rewritten';
INSERT INTO no_such_table VALUES (1);`,
		after: `CREATE TABLE after_broken (x INTEGER);`,
	}))
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Fatalf("open with a broken migration: %v, want an error naming %s", err, broken)
	}

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("open after the failed migration: %v", err)
	}
	defer db.Close()
	for _, tb := range []string{"half_done", "after_broken"} {
		var n int
		db.db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name=?`, tb).Scan(&n)
		if n != 0 {
			t.Errorf("table %s exists after the failed migration", tb)
		}
	}
	for _, c := range columns(t, db.db, "accounts") {
		if c.name == "half_done" {
			t.Error("column added by the failed migration is still there")
		}
	}
	var recorded int
	db.db.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version > ?`, last).Scan(&recorded)
	if recorded != 0 {
		t.Errorf("%d migrations after %d recorded", recorded, last)
	}
	for i, row := range data["accounts"] {
		var status string
		if err := db.db.QueryRow(`SELECT status FROM accounts WHERE id=?`, row["id"]).Scan(&status); err != nil || status != row["status"] {
			t.Errorf("account %d after the failed migration: status %q, %v; want %q", i, status, err, row["status"])
		}
	}
	db.Close()

	fixed, err := openWith(ctx, path, migrationsFS(t, names, map[string]string{
		broken: `CREATE TABLE half_done (x INTEGER);`,
		after:  `CREATE TABLE after_broken (x INTEGER);`,
	}))
	if err != nil {
		t.Fatalf("open with the migration fixed: %v", err)
	}
	defer fixed.Close()
	var n int
	fixed.db.QueryRow(`SELECT count(*) FROM schema_migrations WHERE version > ?`, last).Scan(&n)
	if n != 2 {
		t.Errorf("%d of 2 fixed migrations recorded", n)
	}
}

func TestMigrationNames(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"not numbered", map[string]string{"first.sql": "SELECT 1;"}, "first.sql: bad name"},
		{"one number twice", map[string]string{"0900_a.sql": "CREATE TABLE a (x);", "0900_b.sql": "CREATE TABLE b (x);"}, "0900_b.sql: version 900 is also 0900_a.sql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openWith(ctx, filepath.Join(t.TempDir(), "t.db"), migrationsFS(t, nil, tc.files))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
