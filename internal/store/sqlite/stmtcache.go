package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync/atomic"
)

// The driver compiles the SQL text of every query that is not a prepared
// statement, and the store's queries are constant strings run thousands of
// times a second on the message path: parsing them was a third of the
// relay's CPU. A caching connection keeps each text's compiled statement
// for the life of the connection and runs it again with new arguments.

// maxCachedStmts bounds the statements kept per connection; texts past it
// are compiled for one use, as before.
const maxCachedStmts = 128

// cachingConnector opens driver connections that keep compiled statements.
type cachingConnector struct {
	dsn      string
	drv      driver.Driver
	compiled atomic.Int64 // statements compiled, for tests
}

func newCachingConnector(dsn string) (*cachingConnector, error) {
	// The registered driver, so that its configuration applies.
	db, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, err
	}
	drv := db.Driver()
	db.Close()
	return &cachingConnector{dsn: dsn, drv: drv}, nil
}

func (c *cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	_, tx := cn.(driver.ConnBeginTx)
	_, prep := cn.(driver.ConnPrepareContext)
	if !tx || !prep {
		cn.Close()
		return nil, errors.New("sqlite driver lacks context support")
	}
	return &cachingConn{Conn: cn, stmts: map[string]*cachedStmt{}, compiled: &c.compiled}, nil
}

func (c *cachingConnector) Driver() driver.Driver { return c.drv }

// cachingConn is used by one goroutine at a time (database/sql's
// guarantee for a driver.Conn), so it needs no lock.
type cachingConn struct {
	driver.Conn
	stmts    map[string]*cachedStmt
	compiled *atomic.Int64
}

type cachedStmt struct {
	driver.Stmt
	busy bool // rows of it are open; a second use meanwhile gets its own
}

var (
	_ driver.ExecerContext      = (*cachingConn)(nil)
	_ driver.QueryerContext     = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
)

// stmt returns the cached statement for query, or a one-use statement
// (cached false) that the caller closes.
func (c *cachingConn) stmt(ctx context.Context, query string) (st *cachedStmt, cached bool, err error) {
	if st := c.stmts[query]; st != nil && !st.busy {
		return st, true, nil
	}
	ds, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, false, err
	}
	c.compiled.Add(1)
	st = &cachedStmt{Stmt: ds}
	if _, taken := c.stmts[query]; !taken && len(c.stmts) < maxCachedStmts {
		c.stmts[query] = st
		return st, true, nil
	}
	return st, false, nil
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	st, cached, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if !cached {
		defer st.Close()
	}
	ex, ok := st.Stmt.(driver.StmtExecContext)
	if !ok {
		return nil, fmt.Errorf("sqlite statement lacks ExecContext")
	}
	return ex.ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	st, cached, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	q, ok := st.Stmt.(driver.StmtQueryContext)
	if !ok {
		if !cached {
			st.Close()
		}
		return nil, fmt.Errorf("sqlite statement lacks QueryContext")
	}
	rows, err := q.QueryContext(ctx, args)
	if err != nil {
		if !cached {
			st.Close()
		}
		return nil, err
	}
	st.busy = true
	return &stmtRows{Rows: rows, st: st, cached: cached}, nil
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *cachingConn) Close() error {
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
	return c.Conn.Close()
}

// stmtRows frees its statement for the next use when closed.
type stmtRows struct {
	driver.Rows
	st     *cachedStmt
	cached bool
	closed bool
}

func (r *stmtRows) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.Rows.Close()
	r.st.busy = false
	if !r.cached {
		if cerr := r.st.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
