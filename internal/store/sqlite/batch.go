package sqlite

import (
	"context"
	"database/sql"
)

// batcher is group commit: writes that must be durable before the caller
// answers (a stored message before the SIP 200) share one transaction, and
// so one fsync, with whatever other writes arrived while the previous
// commit was in flight. Each write runs under its own savepoint, so one
// failing write does not undo the others.
type batcher struct {
	db   *sql.DB
	jobs chan *job
	quit chan struct{}
}

type job struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

const maxBatch = 256

func newBatcher(db *sql.DB) *batcher {
	b := &batcher{db: db, jobs: make(chan *job, maxBatch), quit: make(chan struct{})}
	go b.run()
	return b
}

func (b *batcher) close() { close(b.quit) }

// do runs fn in a shared transaction and returns once it is committed.
func (b *batcher) do(ctx context.Context, fn func(*sql.Tx) error) error {
	j := &job{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case b.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.quit:
		return sql.ErrConnDone
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		// The write may still commit; callers treat this as unknown.
		return ctx.Err()
	}
}

func (b *batcher) run() {
	for {
		var batch []*job
		select {
		case j := <-b.jobs:
			batch = append(batch, j)
		case <-b.quit:
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case j := <-b.jobs:
				batch = append(batch, j)
			default:
				break more
			}
		}
		b.commit(batch)
	}
}

func (b *batcher) commit(batch []*job) {
	results := make([]error, len(batch))
	tx, err := b.db.Begin()
	if err == nil {
		for i, j := range batch {
			if j.ctx.Err() != nil {
				results[i] = j.ctx.Err()
				continue
			}
			if _, err = tx.Exec(`SAVEPOINT job`); err != nil {
				break
			}
			if results[i] = j.fn(tx); results[i] != nil {
				if _, err = tx.Exec(`ROLLBACK TO job`); err != nil {
					break
				}
			}
			if _, err = tx.Exec(`RELEASE job`); err != nil {
				break
			}
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	for i, j := range batch {
		if err != nil {
			j.done <- err
		} else {
			j.done <- results[i]
		}
	}
}
