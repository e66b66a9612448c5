package client

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestPinConcurrent: devices pinned from several goroutines at once (as a
// send and a listen may) are pinned once without a constraint error, and
// a changed key is reported by exactly one of them.
func TestPinConcurrent(t *testing.T) {
	ctx := context.Background()
	l, err := openLocalDB(ctx, filepath.Join(t.TempDir(), DBFile), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	const callers = 16
	run := func(cert string) (first, changed int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f, c, err := l.pin(ctx, "carol@example.org/c1", cert, "kex", time.Now())
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if f {
					first++
				}
				if c {
					changed++
				}
			}()
		}
		wg.Wait()
		return first, changed
	}
	if first, changed := run("cert-1"); first != 1 || changed != 0 {
		t.Errorf("first sight: %d callers saw it first, %d a change; want 1 and 0", first, changed)
	}
	if first, changed := run("cert-1"); first != 0 || changed != 0 {
		t.Errorf("same keys again: %d first, %d changed; want 0 and 0", first, changed)
	}
	if first, changed := run("cert-2"); first != 0 || changed != 1 {
		t.Errorf("changed key: %d first, %d changed; want 0 and 1", first, changed)
	}
	var cert string
	if err := l.db.QueryRow(`SELECT cert_sha FROM pins WHERE device=?`, "carol@example.org/c1").Scan(&cert); err != nil || cert != "cert-2" {
		t.Errorf("pinned %q, %v", cert, err)
	}
}
