package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/phonex/phonex/internal/store"
)

var _ store.Transfer = (*DB)(nil)

// columnList names t's columns quoted (some, such as key, are keywords).
func columnList(t store.CopyTable) string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = `"` + c.Name + `"`
	}
	return strings.Join(names, ", ")
}

// Dump reads every table in one transaction (which, begun IMMEDIATE, also
// keeps writers out until it is done), so the copy is one moment's state.
func (s *DB) Dump(ctx context.Context, fn func(table string, row []any) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range store.CopyTables {
			rows, err := tx.QueryContext(ctx, `SELECT `+columnList(t)+` FROM `+t.Name+` ORDER BY "`+strings.Join(t.Key, `", "`)+`"`)
			if err != nil {
				return fmt.Errorf("dump %s: %w", t.Name, err)
			}
			vals := make([]any, len(t.Columns))
			ptrs := make([]any, len(t.Columns))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					rows.Close()
					return fmt.Errorf("dump %s: %w", t.Name, err)
				}
				row, err := t.Normalize(vals)
				if err == nil {
					err = fn(t.Name, row)
				}
				if err != nil {
					rows.Close()
					return err
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("dump %s: %w", t.Name, err)
			}
		}
		return nil
	})
}

// Load inserts with the ids given; SQLite's AUTOINCREMENT and rowid
// allocation continue past the largest id in a table by themselves, and
// the triggers rebuild the byte counts and bump the routing generation.
func (s *DB) Load(ctx context.Context, fill func(put func(table string, row []any) error) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range store.CopyTables {
			var any int
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+t.Name+`)`).Scan(&any); err != nil {
				return err
			}
			if any != 0 {
				return fmt.Errorf("table %s has rows: %w", t.Name, store.ErrNotEmpty)
			}
		}
		stmts := map[string]*sql.Stmt{}
		defer func() {
			for _, st := range stmts {
				st.Close()
			}
		}()
		return fill(func(table string, row []any) error {
			t, ok := store.CopyTableNamed(table)
			if !ok {
				return fmt.Errorf("no table %q to copy into", table)
			}
			row, err := t.Normalize(row)
			if err != nil {
				return err
			}
			st := stmts[table]
			if st == nil {
				marks := strings.TrimSuffix(strings.Repeat("?,", len(t.Columns)), ",")
				if st, err = tx.PrepareContext(ctx, `INSERT INTO `+t.Name+`(`+columnList(t)+`) VALUES(`+marks+`)`); err != nil {
					return err
				}
				stmts[table] = st
			}
			_, err = st.ExecContext(ctx, row...)
			return err
		})
	})
}
