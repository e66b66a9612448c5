package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"strings"
	"sync"
)

// Waiting is on the relay's hot path: the proxy asks it for every MESSAGE
// it hands to devices that are online and idle, and a statement costs
// about a fifth of what the node spends on such a MESSAGE. While nothing
// is committed to the database, its answer cannot change; SQLite says
// whether anything was, by this connection's or any other's, in this
// process or another, through PRAGMA data_version: on one connection, the
// value changes exactly when another connection has committed since the
// pragma last ran there (https://sqlite.org/pragma.html#pragma_data_version).
// So a connection of its own reads it for every call, and the answers of
// calls made since it last changed are kept: the routing generation, and
// the devices found with no copy waiting.
//
// Why a kept answer is current: it was read after the version read that
// started its period, and no commit came between that read and this
// call's version read, which came after this call began. A commit while
// the answer was being read changes the version for the next call, which
// then reads again.
type waitCache struct {
	mu      sync.Mutex
	conn    driver.Conn // the version connection; nil until first used
	broken  bool        // it failed once: statements only from then on
	version int64
	gen     int64          // 0: none kept in this period
	clean   map[int64]bool // devices with no copy waiting in this period
}

// errNoVersion: the version connection gave no row.
var errNoVersion = errors.New("sqlite: no data_version")

// dataVersion reads PRAGMA data_version on the cache's own connection.
// Called with mu held.
func (w *waitCache) dataVersion(ctx context.Context, s *DB) (int64, error) {
	if w.conn == nil {
		c, err := s.conn.Connect(ctx)
		if err != nil {
			return 0, err
		}
		w.conn = c
	}
	// Without a deadline: the driver would start a goroutine per
	// statement to watch it, for a pragma that reads one counter.
	rows, err := w.conn.(driver.QueryerContext).QueryContext(context.WithoutCancel(ctx), `PRAGMA data_version`, nil)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, 1)
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, errNoVersion
		}
		return 0, err
	}
	v, ok := dest[0].(int64)
	if !ok {
		return 0, errNoVersion
	}
	return v, nil
}

func (w *waitCache) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	w.broken = true
}

func (s *DB) Waiting(ctx context.Context, deviceIDs []int64) (int64, bool, error) {
	w := &s.wait
	w.mu.Lock()
	if w.broken {
		w.mu.Unlock()
		return s.waiting(ctx, deviceIDs)
	}
	v, err := w.dataVersion(ctx, s)
	if err != nil {
		// Never wrong, only slower: every call reads the tables.
		if w.conn != nil {
			w.conn.Close()
			w.conn = nil
		}
		w.broken = true
		w.mu.Unlock()
		return s.waiting(ctx, deviceIDs)
	}
	if v != w.version {
		w.version, w.gen, w.clean = v, 0, nil
	}
	if w.gen != 0 {
		hit := true
		for _, id := range deviceIDs {
			if !w.clean[id] {
				hit = false
				break
			}
		}
		if hit {
			gen := w.gen
			w.mu.Unlock()
			return gen, false, nil
		}
	}
	w.mu.Unlock()
	gen, waiting, err := s.waiting(ctx, deviceIDs)
	if err != nil {
		return gen, waiting, err
	}
	w.mu.Lock()
	if w.version == v && !w.broken {
		w.gen = gen
		if !waiting {
			if w.clean == nil {
				w.clean = map[int64]bool{}
			}
			if len(w.clean) < maxClean {
				for _, id := range deviceIDs {
					w.clean[id] = true
				}
			}
		}
	}
	w.mu.Unlock()
	return gen, waiting, nil
}

// maxClean bounds the devices kept per period.
const maxClean = 100000

// waiting is Waiting read from the tables.
func (s *DB) waiting(ctx context.Context, deviceIDs []int64) (int64, bool, error) {
	if len(deviceIDs) == 0 {
		n, err := s.RoutingGeneration(ctx)
		return n, false, err
	}
	// One statement text per count of devices, so each is compiled once.
	q := `SELECT n, EXISTS(SELECT 1 FROM deliveries WHERE device_id IN (?` + strings.Repeat(`,?`, len(deviceIDs)-1) + `)) FROM routing_generation WHERE id=1`
	args := make([]any, len(deviceIDs))
	for i, id := range deviceIDs {
		args[i] = id
	}
	var n int64
	var waiting bool
	err := s.db.QueryRowContext(ctx, q, args...).Scan(&n, &waiting)
	return n, waiting, err
}
