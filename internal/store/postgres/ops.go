package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/phonex/phonex/internal/store"
)

// Ping is in postgres.go.
var _ store.Ops = (*DB)(nil)

func (s *DB) QueueDepth(ctx context.Context) (store.Queue, error) {
	var q store.Queue
	// stored_bytes is kept by triggers: the size sums accounts, not the
	// backlog; the oldest copy has the lowest sequence number.
	err := s.pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM deliveries), (SELECT COALESCE(SUM(bytes),0)::BIGINT FROM stored_bytes)`).Scan(&q.Deliveries, &q.Bytes)
	if err != nil {
		return q, fmt.Errorf("queue depth: %w", err)
	}
	var created int64
	err = s.pool.QueryRow(ctx, `SELECT m.created FROM deliveries d JOIN messages m ON m.id=d.message_id ORDER BY d.seq LIMIT 1`).Scan(&created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return q, fmt.Errorf("queue depth: %w", err)
	default:
		q.Oldest = fromUnix(created)
	}
	return q, nil
}
