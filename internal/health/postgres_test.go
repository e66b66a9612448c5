package health_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/health"
	"github.com/phonex/phonex/internal/store/postgres"
	"github.com/phonex/phonex/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

// TestReadyzPostgresRestart: with the store on PostgreSQL, /readyz (on a
// real socket) says 503 while the server is down and 200 again once it is
// back, with no restart of the process that checks.
func TestReadyzPostgresRestart(t *testing.T) {
	db, err := postgres.Open(context.Background(), testpg.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var c health.Checks
	c.Add("store", db.Ping)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: health.Handler(&c, nil)}
	go srv.Serve(ln)
	defer srv.Close()
	readyz := func() (int, string) {
		t.Helper()
		res, err := http.Get("http://" + ln.Addr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := readyz(); code != 200 {
		t.Fatalf("readyz with PostgreSQL up: %d %s", code, body)
	}
	testpg.Restart(t, func() {
		code, body := readyz()
		if code != 503 || !strings.Contains(body, "store: not ready") {
			t.Errorf("readyz with PostgreSQL down: %d %s", code, body)
		}
	})
	// The pool reconnects by itself; ready again within a few seconds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := readyz()
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz after PostgreSQL came back: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
