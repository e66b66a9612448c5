package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

var _ store.Transfer = (*DB)(nil)

func columnNames(t store.CopyTable) []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// Dump reads every table in one REPEATABLE READ transaction: one
// snapshot, while the nodes may go on writing.
func (s *DB) Dump(ctx context.Context, fn func(table string, row []any) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, t := range store.CopyTables {
			key := pgx.Identifier(t.Key[:1]).Sanitize()
			for _, k := range t.Key[1:] {
				key += ", " + pgx.Identifier{k}.Sanitize()
			}
			cols := ""
			for i, n := range columnNames(t) {
				if i > 0 {
					cols += ", "
				}
				cols += pgx.Identifier{n}.Sanitize()
			}
			rows, err := tx.Query(ctx, `SELECT `+cols+` FROM `+pgx.Identifier{t.Name}.Sanitize()+` ORDER BY `+key)
			if err != nil {
				return fmt.Errorf("dump %s: %w", t.Name, err)
			}
			for rows.Next() {
				vals, err := rows.Values()
				if err == nil {
					vals, err = t.Normalize(vals)
				}
				if err == nil {
					err = fn(t.Name, vals)
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

// sequenced are the identity columns whose sequences a load moves past
// the ids it wrote.
var sequenced = [][2]string{{"accounts", "id"}, {"devices", "id"}, {"messages", "id"}, {"deliveries", "seq"}, {"groups", "id"}, {"audit_log", "id"},
	{"fed_outbound", "id"}, {"dir_notices", "id"}}

// copyChunk is how many rows of a table go to the server in one COPY.
const copyChunk = 1000

// Load writes the rows with COPY, in chunks, in one transaction, then sets
// the identity sequences past the largest ids.
func (s *DB) Load(ctx context.Context, fill func(put func(table string, row []any) error) error) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		for _, t := range store.CopyTables {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{t.Name}.Sanitize()+`)`).Scan(&exists); err != nil {
				return err
			}
			if exists {
				return fmt.Errorf("table %s has rows: %w", t.Name, store.ErrNotEmpty)
			}
		}
		var cur store.CopyTable
		var buf [][]any
		flush := func() error {
			if len(buf) == 0 {
				return nil
			}
			_, err := tx.CopyFrom(ctx, pgx.Identifier{cur.Name}, columnNames(cur), pgx.CopyFromRows(buf))
			buf = buf[:0]
			if err != nil {
				return fmt.Errorf("copy into %s: %w", cur.Name, err)
			}
			return nil
		}
		err := fill(func(table string, row []any) error {
			if table != cur.Name {
				if err := flush(); err != nil {
					return err
				}
				t, ok := store.CopyTableNamed(table)
				if !ok {
					return fmt.Errorf("no table %q to copy into", table)
				}
				cur = t
			}
			row, err := cur.Normalize(row)
			if err != nil {
				return err
			}
			buf = append(buf, row)
			if len(buf) >= copyChunk {
				return flush()
			}
			return nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
		for _, sq := range sequenced {
			tbl, col := pgx.Identifier{sq[0]}.Sanitize(), pgx.Identifier{sq[1]}.Sanitize()
			if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE(MAX(`+col+`), 0), 1), MAX(`+col+`) IS NOT NULL) FROM `+tbl,
				sq[0], sq[1]); err != nil {
				return fmt.Errorf("sequence of %s: %w", sq[0], err)
			}
		}
		return nil
	})
}
