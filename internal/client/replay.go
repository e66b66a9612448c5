package client

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/stp"
)

// The replay table (seen) holds the (sender, nonce, sent) of every accepted
// message. A record is needed only while a replay of its message would pass
// the timestamp window (stp.DefaultMaxAge, plus the skew as a margin); older
// records are pruned. The table is also bounded: when it would exceed
// maxSeen records, the oldest go, and the sent time of the oldest kept one
// becomes a floor below which every message counts as seen, so dropping a
// record never opens a replay. The floor is stored in the table itself as
// the record of the empty sender, so it outlives a restart, and it is pruned
// with the rest once the window has passed it.
var maxSeen = 200_000

const (
	seenKeep   = stp.DefaultMaxAge + stp.DefaultMaxSkew
	pruneEvery = 10 * time.Minute
)

// seenLimits is the pruning state of one profile's replay table.
type seenLimits struct {
	mu     sync.Mutex
	loaded bool
	last   time.Time
	floor  time.Time
}

// belowFloor reports whether a message is older than the floor.
func (l *seenLimits) belowFloor(ctx context.Context, db *sql.DB, sent time.Time) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.loaded {
		var ms int64
		err := db.QueryRowContext(ctx, `SELECT sent FROM seen WHERE sender='' AND nonce=0`).Scan(&ms)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
		if err == nil {
			l.floor = time.UnixMilli(ms)
		}
		l.loaded = true
	}
	return !l.floor.IsZero() && sent.Before(l.floor), nil
}

// prune drops the records that the timestamp window makes useless and, if
// the table is still over its bound, the oldest ones, raising the floor. It
// runs at most every pruneEvery unless forced.
func (l *seenLimits) prune(ctx context.Context, db *sql.DB, now time.Time, force bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !force && now.Sub(l.last) < pruneEvery {
		return nil
	}
	l.last = now
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM seen WHERE sent < ?`, now.Add(-seenKeep).UnixMilli()); err != nil {
		return err
	}
	var floor int64
	err = tx.QueryRowContext(ctx, `SELECT sent FROM seen WHERE sender<>'' ORDER BY sent DESC LIMIT 1 OFFSET ?`, maxSeen-1).Scan(&floor)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// Within the bound. A floor older than the window went above.
		var ms int64
		if tx.QueryRowContext(ctx, `SELECT sent FROM seen WHERE sender='' AND nonce=0`).Scan(&ms) != nil {
			l.floor = time.Time{}
		}
	case err != nil:
		return err
	default:
		if _, err := tx.ExecContext(ctx, `DELETE FROM seen WHERE sent < ?`, floor); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO seen(sender, nonce, sent) VALUES('', 0, ?) ON CONFLICT(sender, nonce) DO UPDATE SET sent=excluded.sent`, floor); err != nil {
			return err
		}
		l.floor = time.UnixMilli(floor)
	}
	l.loaded = true
	return tx.Commit()
}
