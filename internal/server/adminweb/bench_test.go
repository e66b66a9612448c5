package adminweb

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/phonex/phonex/internal/server"
)

// fill adds n accounts (every tenth with a device) straight through SQL in
// one transaction: the store's own path commits each one.
func fill(b *testing.B, f *fixture, n int) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(f.adm.Config().DataDir, server.DBFile)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixNano()
	for i := range n {
		res, err := tx.Exec(`INSERT INTO accounts(name, status, created) VALUES(?, 'active', ?)`, fmt.Sprintf("user%06d@example.org", i), now)
		if err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			id, _ := res.LastInsertId()
			if _, err := tx.Exec(`INSERT INTO devices(account_id, name, handle, suite, serial, cert, not_after, status, sealed_oprf, created) VALUES(?, 'laptop', ?, 'ec', '01', x'', ?, 'active', x'', ?)`,
				id, fmt.Sprintf("h%d", i), now, now); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAccountList renders the account list page over 100,000 accounts:
// the first page, one in the middle (page 1,001), the last (2,000), and a
// search.
func BenchmarkAccountList(b *testing.B) {
	f := newFixture(b)
	fill(b, f, 100_000)
	c, _ := f.signIn()
	cookies := c.Jar.Cookies(mustURL(f.srv.URL))
	h := f.panel.Handler()
	for _, q := range []string{"", "after=user050000@example.org", "after=user099950@example.org", "q=user0999"} {
		b.Run("query="+q, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "https://panel/accounts?"+q, nil)
				for _, ck := range cookies {
					req.AddCookie(ck)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkPanelHeap reports the heap the panel holds once made and after
// serving the main pages (templates, samples, session limiter), the part of
// the node's memory the panel adds.
func BenchmarkPanelHeap(b *testing.B) {
	f := newFixture(b)
	fill(b, f, 100_000)
	c, _ := f.signIn()
	cookies := c.Jar.Cookies(mustURL(f.srv.URL))
	var held float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		p, err := New(f.adm, f.auth, nil, f.panel.log)
		if err != nil {
			b.Fatal(err)
		}
		h := p.Handler()
		for i := range 120 {
			p.sample(context.Background())
			req := httptest.NewRequest(http.MethodGet, "https://panel/"+[]string{"accounts?after=user000350@example.org", "live", "audit", "live/chart.svg?series=waiting"}[i%4], nil)
			for _, ck := range cookies {
				req.AddCookie(ck)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(p)
		held = float64(after.HeapAlloc) - float64(before.HeapAlloc)
	}
	b.ReportMetric(held, "heap-B")
}
