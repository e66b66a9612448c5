package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/metrics"
)

// TestReadyzStoreDown: the metrics listener on a real socket answers
// /healthz and /readyz; once the store cannot answer, /readyz says 503 and
// why, and /healthz still says the process is alive.
func TestReadyzStoreDown(t *testing.T) {
	n := openNode(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.ServeOps(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz with the store up: %d %s", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, metrics.NameStoreLatency+`_count{op="ping"}`) {
		t.Fatalf("metrics: %d, no timed ping in\n%s", code, body)
	}
	n.st.Close() // the store's handle gone: every query fails
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "store: not ready") {
		t.Fatalf("readyz with the store closed: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz with the store closed: %d", code)
	}
}

// TestReadinessChecksAdded: a part added later (the bus) makes the node
// not ready while its check fails.
func TestReadinessChecksAdded(t *testing.T) {
	n := openNode(t, nil)
	if err := n.Readiness().Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	n.Readiness().Add("bus", func(context.Context) error { return io.ErrClosedPipe })
	if err := n.Readiness().Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "bus") {
		t.Fatalf("with a failing bus check: %v", err)
	}
}

func TestMetricsAddrConfig(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"127.0.0.1:9464", true}, {"off", true}, {"[::1]:0", true}, {"9464", false}} {
		cfg := Defaults(t.TempDir())
		cfg.MetricsAddr = tc.v
		data := cfg.Encode()
		got, err := ParseConfig(cfg.DataDir, data)
		if (err == nil) != tc.ok || (tc.ok && got.MetricsAddr != tc.v) {
			t.Errorf("metrics_addr %q: %q, %v", tc.v, got.MetricsAddr, err)
		}
	}
}
