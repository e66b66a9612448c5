package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/storetest"
)

// TestConformance runs the store conformance suite against SQLite: each
// test's first open makes a database in its temporary directory, later
// opens in the test are other handles on that file.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	paths := map[*testing.T]string{}
	storetest.Run(t, func(t *testing.T) store.Store {
		mu.Lock()
		path, ok := paths[t]
		if !ok {
			path = filepath.Join(t.TempDir(), "t.db")
			paths[t] = path
		}
		mu.Unlock()
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

func BenchmarkRelay(b *testing.B) {
	db, err := Open(context.Background(), filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	storetest.BenchmarkRelay(b, db)
}
