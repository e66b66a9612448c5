// Package health answers a load balancer's questions about a node: is the
// process alive (/healthz), and can it serve now (/readyz: every
// registered readiness check passes).
package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// ErrNotReady wraps the failure of a readiness check.
var ErrNotReady = errors.New("not ready")

// CheckTimeout bounds one check: a store that takes longer to answer a
// trivial query is not serving either.
const CheckTimeout = 2 * time.Second

// Checks is a node's set of readiness checks. The zero value is ready.
type Checks struct {
	mu     sync.Mutex
	checks []check
}

type check struct {
	name string
	fn   func(context.Context) error
}

// Add registers a check under a short name (store, bus); the name shows in
// the /readyz answer, so it must say nothing about users.
func (c *Checks) Add(name string, fn func(context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks = append(c.checks, check{name, fn})
}

// Ready runs every check, each within CheckTimeout, and returns the
// failures joined, each wrapping ErrNotReady.
func (c *Checks) Ready(ctx context.Context) error {
	c.mu.Lock()
	list := append([]check(nil), c.checks...)
	c.mu.Unlock()
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, ch := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, CheckTimeout)
			defer cancel()
			if err := ch.fn(cctx); err != nil {
				errs[i] = fmt.Errorf("%s: %w: %w", ch.name, ErrNotReady, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Handler serves /healthz and /readyz, and metrics (if not nil) on
// /metrics. The answers are short plain text; a failed check's reason is
// its error, which checks keep free of secrets and user names.
func Handler(c *Checks, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := c.Ready(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready:", err)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if metrics != nil {
		mux.Handle("GET /metrics", metrics)
	}
	return mux
}
