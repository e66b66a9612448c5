package sqlite

import (
	"context"
	"database/sql"
	"time"
)

// CountHandout implements store.Handouts in one write transaction (the
// DSN's _txlock=immediate takes the write lock at BEGIN), so two counts
// never read the same total.
func (s *DB) CountHandout(ctx context.Context, requester, target int64, now time.Time, window time.Duration, perPair, perTarget int) (bool, error) {
	since := now.Add(-window).UnixMilli()
	recorded := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM key_handouts WHERE at<=?`, since); err != nil {
			return err
		}
		var all, pair int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(requester=?), 0) FROM key_handouts WHERE target=? AND at>?`,
			requester, target, since).Scan(&all, &pair); err != nil {
			return err
		}
		if pair >= perPair || all >= perTarget {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO key_handouts(requester, target, at) VALUES(?, ?, ?)`, requester, target, now.UnixMilli()); err != nil {
			return err
		}
		recorded = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return recorded, nil
}
