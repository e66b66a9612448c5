package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// batcher is group commit: writes that must be durable before the caller
// answers (a stored message before the SIP 200) share one transaction, and
// so one fsync, with whatever other writes arrived while the previous
// commit was in flight. Each write runs under its own savepoint, so one
// failing write does not undo the others.
type batcher struct {
	db   *sql.DB
	jobs chan *job
	// mu guards closed and the send side of jobs: do sends under the read
	// lock, close takes the write lock before closing jobs, so no write
	// is queued after run has drained the queue and stopped.
	mu      sync.RWMutex
	closed  bool
	stopped chan struct{}
	// gen is the routing generation as the current transaction sees it,
	// read once per transaction on first use (genRead); only run's
	// goroutine touches them.
	gen     int64
	genRead bool
}

type job struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
	// single marks a job of one statement that fails only when the
	// database does (no constraint to break): it runs without a savepoint
	// of its own, and its failure fails the batch.
	single bool
}

const maxBatch = 256

// errClosed is returned to writes that arrive after Close.
var errClosed = fmt.Errorf("store is closed: %w", sql.ErrConnDone)

func newBatcher(db *sql.DB) *batcher {
	b := &batcher{db: db, jobs: make(chan *job, maxBatch), stopped: make(chan struct{})}
	go b.run()
	return b
}

// close stops accepting writes, commits the ones already queued, and
// returns once the last commit is done, so the database can be closed
// without stranding a caller.
func (b *batcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.jobs)
	}
	b.mu.Unlock()
	<-b.stopped
}

// do runs fn in a shared transaction and returns once it is committed.
func (b *batcher) do(ctx context.Context, fn func(*sql.Tx) error) error {
	return b.queue(&job{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// doStatement is do for an fn that runs exactly one statement.
func (b *batcher) doStatement(ctx context.Context, fn func(*sql.Tx) error) error {
	return b.queue(&job{ctx: ctx, fn: fn, done: make(chan error, 1), single: true})
}

func (b *batcher) queue(j *job) error {
	ctx := j.ctx
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errClosed
	}
	select {
	case b.jobs <- j:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
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
	defer close(b.stopped)
	for j := range b.jobs {
		batch := []*job{j}
	more:
		for len(batch) < maxBatch {
			select {
			case j, ok := <-b.jobs:
				if !ok {
					break more
				}
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
	b.genRead = false
	tx, err := b.db.Begin()
	if err == nil {
		for i, j := range batch {
			if j.ctx.Err() != nil {
				results[i] = j.ctx.Err()
				continue
			}
			if j.single {
				// Without a savepoint a failure cannot be undone alone
				// (and some errors end the whole transaction): the
				// batch fails together, and the others retry.
				if err = j.fn(tx); err != nil {
					break
				}
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

// generation is the routing generation inside the batch's transaction. The
// transaction holds SQLite's write lock from its BEGIN (_txlock=immediate),
// and no job of a batch changes what the generation counts, so one read
// serves every job of the transaction.
func (b *batcher) generation(tx *sql.Tx) (int64, error) {
	if !b.genRead {
		if err := tx.QueryRow(`SELECT n FROM routing_generation WHERE id=1`).Scan(&b.gen); err != nil {
			return 0, fmt.Errorf("routing generation: %w", err)
		}
		b.genRead = true
	}
	return b.gen, nil
}
