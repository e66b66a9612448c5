package postgres

import (
	"context"
	"sync"
	"testing"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/storetest"
	"github.com/phonex/phonex/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// open returns a store on a fresh database for t.
func open(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), testpg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConformance runs the store conformance suite against PostgreSQL:
// each test's first open creates a database, later opens in the test are
// other pools on it (other nodes).
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	dsns := map[*testing.T]string{}
	storetest.Run(t, func(t *testing.T) store.Store {
		mu.Lock()
		dsn, ok := dsns[t]
		if !ok {
			dsn = testpg.DSN(t)
			dsns[t] = dsn
		}
		mu.Unlock()
		db, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		// Closed before the database is dropped (cleanups run last
		// registered first).
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func BenchmarkRelay(b *testing.B) {
	db, err := Open(context.Background(), testpg.DSN(b))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchmarkRelay(b, db)
}
