package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestBatcherCloseWithQueuedJobs closes the store while one write is being
// committed and more are queued behind it, and writes keep arriving: every
// write must return, and a write that returned nil must be in the
// database while one that returned an error must not. Writes queued
// before Close are committed.
func TestBatcherCloseWithQueuedJobs(t *testing.T) {
	// The shutdown races the batcher's loop; repeat so that an ordering
	// that strands a job is hit.
	for round := 0; round < 20; round++ {
		closeWithQueued(t, round)
		if t.Failed() {
			return
		}
	}
}

func closeWithQueued(t *testing.T, round int) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE writes (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	insert := func(n int) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO writes(n) VALUES(?)`, n)
			return err
		}
	}

	// Job 0 holds the batcher inside a commit until released.
	inCommit, release := make(chan struct{}), make(chan struct{})
	const queued, late = 40, 10
	results := make(chan [2]int, 1+queued+late) // n, 1 if do returned nil
	do := func(n int, fn func(*sql.Tx) error) {
		err := db.batch.do(ctx, fn)
		ok := 0
		if err == nil {
			ok = 1
		}
		results <- [2]int{n, ok}
	}
	go do(0, func(tx *sql.Tx) error {
		close(inCommit)
		<-release
		return insert(0)(tx)
	})
	<-inCommit
	for n := 1; n <= queued; n++ {
		go do(n, insert(n))
	}
	// Let the queued writes reach the batcher's queue.
	deadline := time.Now().Add(30 * time.Second)
	for len(db.batch.jobs) < queued {
		if time.Now().After(deadline) {
			t.Fatalf("round %d: %d of %d writes queued after 30s", round, len(db.batch.jobs), queued)
		}
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	for n := queued + 1; n <= queued+late; n++ {
		go do(n, insert(n))
	}
	close(release)

	ok := map[int]bool{}
	timeout := time.After(10 * time.Second)
	for i := 0; i < 1+queued+late; i++ {
		select {
		case r := <-results:
			ok[r[0]] = r[1] == 1
		case <-timeout:
			t.Fatalf("round %d: %d of %d writes still waiting 10s after Close", round, 1+queued+late-i, 1+queued+late)
		}
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("round %d: close: %v", round, err)
		}
	case <-timeout:
		t.Fatalf("round %d: Close did not return", round)
	}

	// Close commits what was queued before it.
	for n := 0; n <= queued; n++ {
		if !ok[n] {
			t.Errorf("round %d: write %d, queued before Close, failed", round, n)
		}
	}

	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for n, committed := range ok {
		var got int
		db.db.QueryRowContext(ctx, `SELECT count(*) FROM writes WHERE n=?`, n).Scan(&got)
		if committed != (got == 1) {
			t.Errorf("round %d: write %d returned success=%v but is %sin the database", round, n, committed, map[bool]string{true: "", false: "not "}[got == 1])
		}
	}
	if t.Failed() {
		t.Logf("round %d: %s", round, fmt.Sprint(ok))
	}
}

// TestStatementJobs: a one-statement job (run without a savepoint) that
// fails fails its whole batch, and nothing of that batch is stored; one
// that succeeds commits with the others.
func TestStatementJobs(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE writes (n INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	insert := func(n int) func(*sql.Tx) error {
		return func(tx *sql.Tx) error {
			_, err := tx.Exec(`INSERT INTO writes(n) VALUES(?)`, n)
			return err
		}
	}
	errDisk := errors.New("disk failed")
	type result struct {
		n   int
		err error
	}
	// batch runs the jobs in one transaction: a first job holds the
	// batcher until the others are queued behind it.
	batch := func(jobs map[int]func() error) map[int]error {
		inCommit, release := make(chan struct{}), make(chan struct{})
		hold := make(chan error, 1)
		go func() {
			hold <- db.batch.do(ctx, func(tx *sql.Tx) error { close(inCommit); <-release; return nil })
		}()
		<-inCommit
		results := make(chan result, len(jobs))
		for n, f := range jobs {
			go func() { results <- result{n, f()} }()
		}
		for len(db.batch.jobs) < len(jobs) {
			time.Sleep(time.Millisecond)
		}
		close(release)
		if err := <-hold; err != nil {
			t.Fatal(err)
		}
		out := map[int]error{}
		for range jobs {
			r := <-results
			out[r.n] = r.err
		}
		return out
	}
	stored := func(n int) bool {
		var one int
		return db.db.QueryRow(`SELECT 1 FROM writes WHERE n=?`, n).Scan(&one) == nil
	}

	got := batch(map[int]func() error{
		1: func() error { return db.batch.doStatement(ctx, insert(1)) },
		2: func() error { return db.batch.do(ctx, insert(2)) },
	})
	if got[1] != nil || got[2] != nil || !stored(1) || !stored(2) {
		t.Fatalf("results %v, stored 1: %v, 2: %v", got, stored(1), stored(2))
	}
	got = batch(map[int]func() error{
		4: func() error {
			return db.batch.doStatement(ctx, func(tx *sql.Tx) error {
				if err := insert(4)(tx); err != nil {
					return err
				}
				return errDisk
			})
		},
		5: func() error { return db.batch.do(ctx, insert(5)) },
		6: func() error { return db.batch.doStatement(ctx, insert(6)) },
	})
	for n, err := range got {
		if err == nil || stored(n) {
			t.Errorf("job %d in a failed batch: %v, stored %v", n, err, stored(n))
		}
	}
}
