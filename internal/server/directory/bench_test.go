package directory_test

import (
	"fmt"
	"testing"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/e164"
	"github.com/phonex/phonex/internal/server/directory"
)

// benchHarness publishes n numbers, one account each, and gives the
// querying device an unbounded budget.
func benchHarness(b *testing.B, n int) *harness {
	lim := directory.DefaultLimits
	lim.QueryBudget = 1 << 30
	h := newHarness(b, lim)
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("u%d", i)
		h.device(user, "d")
		h.publish(user+"/d", fmt.Sprintf("+4207770%05d", i))
	}
	h.device("q", "d")
	return h
}

// One lookup through HTTP, the handler and the SQLite store.
func BenchmarkLookup(b *testing.B) {
	h := benchHarness(b, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.lookup("q/d", api.DirLookup{Number: fmt.Sprintf("+4207770%05d", i%100)}); err != nil {
			b.Fatal(err)
		}
	}
}

// One discovery of api.MaxDiscover hashes, a tenth of them published.
func BenchmarkDiscover1000(b *testing.B) {
	h := benchHarness(b, 100)
	var req api.DirDiscover
	for i := 0; i < api.MaxDiscover; i++ {
		req.Hashes = append(req.Hashes, e164.Hash(fmt.Sprintf("+4207770%05d", i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var d api.DirDiscovered
		if err := h.call("q/d", "POST", api.PathDirDiscover, req, &d); err != nil || len(d.Matches) != 100 {
			b.Fatalf("%d matches, %v", len(d.Matches), err)
		}
	}
}
