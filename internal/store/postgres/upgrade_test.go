package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/phonex/phonex/internal/testpg"
)

type pgColumn struct {
	name, typ string
	nullable  bool
	key       bool // part of the primary key
}

type pgRef struct{ table, column string }

func pgTables(t *testing.T, p *pgxpool.Pool) []string {
	t.Helper()
	rows, _ := p.Query(context.Background(), `SELECT table_name FROM information_schema.tables
		WHERE table_schema='public' AND table_type='BASE TABLE' AND table_name != 'schema_migrations' ORDER BY table_name`)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func pgColumns(t *testing.T, p *pgxpool.Pool, table string) []pgColumn {
	t.Helper()
	rows, err := p.Query(context.Background(), `SELECT c.column_name, c.data_type, c.is_nullable='YES',
			EXISTS (SELECT 1 FROM information_schema.table_constraints tc JOIN information_schema.key_column_usage k
				ON k.constraint_name=tc.constraint_name AND k.table_name=tc.table_name
				WHERE tc.table_name=c.table_name AND tc.constraint_type='PRIMARY KEY' AND k.column_name=c.column_name)
		FROM information_schema.columns c WHERE c.table_schema='public' AND c.table_name=$1 ORDER BY c.ordinal_position`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []pgColumn
	for rows.Next() {
		var c pgColumn
		if err := rows.Scan(&c.name, &c.typ, &c.nullable, &c.key); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// pgRefs maps a table's columns to the columns their foreign keys name.
func pgRefs(t *testing.T, p *pgxpool.Pool, table string) map[string]pgRef {
	t.Helper()
	rows, err := p.Query(context.Background(), `SELECT a.attname, cl.relname, fa.attname
		FROM pg_constraint c
		JOIN pg_class tc ON tc.oid=c.conrelid
		JOIN pg_class cl ON cl.oid=c.confrelid
		JOIN pg_attribute a ON a.attrelid=c.conrelid AND a.attnum=c.conkey[1]
		JOIN pg_attribute fa ON fa.attrelid=c.confrelid AND fa.attnum=c.confkey[1]
		WHERE c.contype='f' AND tc.relname=$1`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]pgRef{}
	for rows.Next() {
		var col string
		var r pgRef
		if err := rows.Scan(&col, &r.table, &r.column); err != nil {
			t.Fatal(err)
		}
		out[col] = r
	}
	return out
}

// pgFill inserts perTable rows into every table of the schema, parents
// before children, with values of each column's type (NULL in some
// nullable columns, binary bytes in bytea), and returns the rows as stored.
func pgFill(t *testing.T, p *pgxpool.Pool, perTable int) map[string][]map[string]any {
	t.Helper()
	ctx := context.Background()
	all := pgTables(t, p)
	refs := map[string]map[string]pgRef{}
	for _, tb := range all {
		refs[tb] = pgRefs(t, p, tb)
	}
	var order []string
	done := map[string]bool{}
	for len(order) < len(all) {
		progress := false
		for _, tb := range all {
			if done[tb] {
				continue
			}
			ready := true
			for _, r := range refs[tb] {
				if r.table != tb && !done[r.table] {
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
		cols := pgColumns(t, p, tb)
		for row := 0; row < perTable; row++ {
			var names, marks []string
			var args []any
			for _, c := range cols {
				var v any
				switch r, ok := refs[tb][c.name]; {
				case ok:
					if err := p.QueryRow(ctx, fmt.Sprintf(`SELECT %s FROM %s ORDER BY 1 LIMIT 1 OFFSET $1`,
						pgx.Identifier{r.column}.Sanitize(), pgx.Identifier{r.table}.Sanitize()), row).Scan(&v); err != nil {
						t.Fatalf("%s.%s references %s.%s, which has no row %d: %v", tb, c.name, r.table, r.column, row, err)
					}
				case row%3 == 2 && c.nullable:
					v = nil
				case c.typ == "bigint" || c.typ == "integer":
					v = int64(1_700_000_000_000_000_000 + row*7919)
					if c.key {
						v = int64(1000 + row)
					}
				case c.typ == "text":
					v = fmt.Sprintf("%s.%s.%d é", tb, c.name, row)
				case c.typ == "bytea":
					v = append([]byte(fmt.Sprintf("%s.%s.%d", tb, c.name, row)), 0, 0xff, byte(row))
				default:
					t.Fatalf("%s.%s: no test value for type %s", tb, c.name, c.typ)
				}
				names, marks, args = append(names, pgx.Identifier{c.name}.Sanitize()), append(marks, fmt.Sprintf("$%d", len(args)+1)), append(args, v)
			}
			rows, err := p.Query(ctx, fmt.Sprintf(`INSERT INTO %s (%s) VALUES (%s) RETURNING *`, pgx.Identifier{tb}.Sanitize(),
				strings.Join(names, ", "), strings.Join(marks, ", ")), args...)
			if err != nil {
				t.Fatalf("insert into %s: %v", tb, err)
			}
			m, err := pgx.CollectOneRow(rows, pgx.RowToMap)
			if err != nil {
				t.Fatalf("insert into %s: %v", tb, err)
			}
			stored[tb] = append(stored[tb], m)
		}
	}
	return stored
}

// TestMigrateWithDataFromEveryVersion migrates a database holding data at
// each earlier schema version to the latest, and checks that every row
// survives with the values of every column that still exists. It reads the
// schema, so new migrations are covered without changing the test.
func TestMigrateWithDataFromEveryVersion(t *testing.T) {
	ctx := context.Background()
	list, err := Versions(migrations)
	if err != nil {
		t.Fatal(err)
	}
	for k, m := range list {
		t.Run("from "+m.Name, func(t *testing.T) {
			dsn := testpg.DSN(t)
			pool, err := pgxpool.New(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer pool.Close()
			old := &DB{pool: pool}
			next := 1 << 30
			if k+1 < len(list) {
				next = list[k+1].Version
			}
			if err := old.migrate(ctx, upTo(t, next)); err != nil {
				t.Fatalf("migrate to %s: %v", m.Name, err)
			}
			data := pgFill(t, pool, 3)
			db := open2(t, dsn)
			var applied int
			db.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&applied)
			if applied != len(list) {
				t.Errorf("%d migrations recorded, want %d", applied, len(list))
			}
			latest := map[string]map[string]bool{}
			for _, tb := range pgTables(t, db.pool) {
				latest[tb] = map[string]bool{}
				for _, c := range pgColumns(t, db.pool, tb) {
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
						if !latest[tb][col] {
							if i == 0 {
								t.Errorf("%s.%s, holding data, was dropped", tb, col)
							}
							continue
						}
						args = append(args, v)
						conds = append(conds, fmt.Sprintf(`%s IS NOT DISTINCT FROM $%d`, pgx.Identifier{col}.Sanitize(), len(args)))
					}
					var n int
					q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE %s`, pgx.Identifier{tb}.Sanitize(), strings.Join(conds, " AND "))
					if err := db.pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
					if n != 1 {
						t.Errorf("%s row %d (%v) did not survive: %d matches", tb, i, row, n)
					}
				}
			}
		})
	}
}
