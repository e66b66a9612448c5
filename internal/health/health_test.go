package health

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHandler(t *testing.T) {
	var c Checks
	failing := errors.New("connection refused")
	var storeErr atomic.Pointer[error]
	c.Add("store", func(context.Context) error {
		if e := storeErr.Load(); e != nil {
			return *e
		}
		return nil
	})
	c.Add("slow", func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil // honours the deadline
		case <-time.After(10 * time.Millisecond):
			return nil
		}
	})
	srv := httptest.NewServer(Handler(&c, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "m 1\n") })))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name     string
		storeErr error
		path     string
		code     int
		body     string
	}{
		{"alive", nil, "/healthz", 200, "ok"},
		{"ready", nil, "/readyz", 200, "ready"},
		{"metrics", nil, "/metrics", 200, "m 1"},
		{"store down", failing, "/readyz", 503, "store: not ready: connection refused"},
		{"alive while not ready", failing, "/healthz", 200, "ok"},
		{"unknown path", nil, "/debug", 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storeErr.Store(&tc.storeErr)
			code, body := get(tc.path)
			if code != tc.code || !strings.Contains(body, tc.body) {
				t.Fatalf("%s: %d %q, want %d with %q", tc.path, code, body, tc.code, tc.body)
			}
		})
	}
	storeErr.Store(&failing)
	if err := c.Ready(context.Background()); !errors.Is(err, ErrNotReady) || !errors.Is(err, failing) {
		t.Fatalf("Ready: %v", err)
	}
}
