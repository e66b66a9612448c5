package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConnectionsKept: the message path's concurrent reads, more of them
// than the pool holds, reuse pooled connections instead of opening and
// closing one per query (each open costs the pragmas and, with them gone,
// every compiled statement).
func TestConnectionsKept(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	a, err := db.CreateAccount(ctx, "owner@x.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.AddContact(ctx, a.ID, "friend@x.org", time.Now()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4*maxConns; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if ok, err := db.HasContact(ctx, a.Name, "friend@x.org"); err != nil || !ok {
					t.Errorf("HasContact: %v %v", ok, err)
					return
				}
				if _, err := db.StoredBytes(ctx, a.ID); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if st := db.db.Stats(); st.MaxIdleClosed > 0 || st.OpenConnections > maxConns {
		t.Fatalf("%d connections closed for want of idle slots (%d open)", st.MaxIdleClosed, st.OpenConnections)
	}
}

// TestStatementsCompiledOnce: a query text is compiled once per
// connection, not once per run.
func TestStatementsCompiledOnce(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	a, err := db.CreateAccount(ctx, "owner@x.org", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.HasContact(ctx, a.Name, "x@x.org"); err != nil {
		t.Fatal(err)
	}
	before := db.conn.compiled.Load()
	for i := 0; i < 500; i++ {
		if _, err := db.HasContact(ctx, a.Name, fmt.Sprintf("c%d@x.org", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.conn.compiled.Load() - before; n > int64(db.db.Stats().OpenConnections) {
		t.Fatalf("500 runs of one query compiled it %d times", n)
	}
}

// TestStatementCacheSemantics: the cache changes nothing a caller sees:
// nested use of one text while its rows are open, reuse after a failed
// run, arguments not carried over, and more texts than the cache holds.
func TestStatementCacheSemantics(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	if _, err := db.db.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	const ins = `INSERT INTO t(k, v) VALUES(?, ?)`
	for k := 1; k <= 3; k++ {
		if _, err := db.db.ExecContext(ctx, ins, k, fmt.Sprint("v", k)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.db.ExecContext(ctx, ins, 1, "dup"); err == nil || !isUnique(err) {
		t.Fatalf("duplicate key: %v", err)
	}
	if _, err := db.db.ExecContext(ctx, ins, 4, "v4"); err != nil {
		t.Fatalf("insert after a failed run of the same statement: %v", err)
	}

	// The same text while its rows are open, on the same connection.
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const sel = `SELECT k, v FROM t WHERE k >= ? ORDER BY k`
	rows, err := tx.QueryContext(ctx, sel, 1)
	if err != nil {
		t.Fatal(err)
	}
	var outer, inner int
	for rows.Next() {
		var k int
		var v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		outer++
		in, err := tx.QueryContext(ctx, sel, k)
		if err != nil {
			t.Fatal(err)
		}
		for in.Next() {
			inner++
		}
		if err := in.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if outer != 4 || inner != 4+3+2+1 {
		t.Fatalf("outer %d inner %d rows", outer, inner)
	}
	var v string
	if err := tx.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, 2).Scan(&v); err != nil || v != "v2" {
		t.Fatalf("k=2: %q %v", v, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT v FROM t WHERE k = ?`, 9).Scan(&v); err != sql.ErrNoRows {
		t.Fatalf("k=9: %q %v", v, err)
	}
	// More distinct texts than one connection caches.
	for i := 0; i < maxCachedStmts+20; i++ {
		var n int
		if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d + k FROM t WHERE k = 1`, i)).Scan(&n); err != nil || n != i+1 {
			t.Fatalf("text %d: %d %v", i, n, err)
		}
	}
}
