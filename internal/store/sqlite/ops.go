package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/phonex/phonex/internal/store"
)

// Ping is in sqlite.go.
var _ store.Ops = (*DB)(nil)

func (s *DB) QueueDepth(ctx context.Context) (store.Queue, error) {
	var q store.Queue
	// stored_bytes is kept by triggers, so the size is a sum over accounts,
	// not over the backlog; the oldest copy is the lowest sequence number.
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM deliveries), (SELECT COALESCE(SUM(bytes),0) FROM stored_bytes)`).Scan(&q.Deliveries, &q.Bytes)
	if err != nil {
		return q, fmt.Errorf("queue depth: %w", err)
	}
	var created int64
	err = s.db.QueryRowContext(ctx, `SELECT m.created FROM deliveries d JOIN messages m ON m.id=d.message_id ORDER BY d.seq LIMIT 1`).Scan(&created)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return q, fmt.Errorf("queue depth: %w", err)
	default:
		q.Oldest = fromUnix(created)
	}
	return q, nil
}
