package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// CountHandout implements store.Handouts. The target device's row is
// locked first, so counts for one target run one at a time on every node;
// each count forgets only its target's old handouts, so counts for
// different targets never wait for each other (a target never asked
// again keeps at most perTarget rows).
func (s *DB) CountHandout(ctx context.Context, requester, target int64, now time.Time, window time.Duration, perPair, perTarget int) (bool, error) {
	since := now.Add(-window).UnixMilli()
	recorded := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		recorded = false
		if _, err := tx.Exec(ctx, `SELECT id FROM devices WHERE id=$1 FOR NO KEY UPDATE`, target); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM key_handouts WHERE target=$1 AND at<=$2`, target, since); err != nil {
			return err
		}
		var all, pair int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*), COUNT(*) FILTER (WHERE requester=$1) FROM key_handouts WHERE target=$2 AND at>$3`,
			requester, target, since).Scan(&all, &pair); err != nil {
			return err
		}
		if pair >= perPair || all >= perTarget {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO key_handouts(requester, target, at) VALUES($1, $2, $3)`, requester, target, now.UnixMilli()); err != nil {
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
