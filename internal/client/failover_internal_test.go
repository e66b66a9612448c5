package client

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/phonex/phonex/internal/freeport"
)

func TestParseServers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"a.example:8443", "a.example:8443", false},
		{" a:1 , b:2 ,a:1,", "a:1|b:2", false},
		{"[::1]:8443,127.0.0.1:8443", "[::1]:8443|127.0.0.1:8443", false},
		{"", "", true},
		{" , ", "", true},
		{"a:1,nohostport", "", true},
	} {
		got, err := ParseServers(tc.in)
		if (err != nil) != tc.err || strings.Join(got, "|") != tc.want {
			t.Errorf("ParseServers(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := ParseServers(""); !errors.Is(err, ErrNoServer) {
		t.Errorf("empty list: %v", err)
	}
}

// TestNodeListMovesOnlyUnsentRequests: a refused connection moves to the
// next address, which stays in use; a request that reached a node is
// never repeated on another.
func TestNodeListMovesOnlyUnsentRequests(t *testing.T) {
	var mu sync.Mutex
	hitMap := map[string]int{}
	hit := func(name string) {
		mu.Lock()
		hitMap[name]++
		mu.Unlock()
	}
	hits := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return hitMap[name]
	}
	handler := func(name string, status int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hit(name)
			w.WriteHeader(status)
		})
	}
	up := httptest.NewServer(handler("up", 200))
	defer up.Close()
	failing := httptest.NewServer(handler("failing", 500))
	defer failing.Close()
	// A node that takes the request and drops the connection unanswered.
	hang := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit("reset")
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	hang.Start()
	defer hang.Close()
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	get := func(l *nodeList) (string, int, error) {
		code := 0
		server, err := l.try(func(server string) error {
			res, err := http.Get("http://" + server + "/")
			if err != nil {
				return err
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			code = res.StatusCode
			return nil
		})
		return server, code, err
	}

	down := freeport.Addr(t)
	l := newNodeList([]string{down, host(up)})
	if s, code, err := get(l); err != nil || s != host(up) || code != 200 {
		t.Fatalf("past a refused node: %s %d %v", s, code, err)
	}
	if l.current() != host(up) {
		t.Fatalf("in use after moving: %s", l.current())
	}
	// An answer, even an error status, is the node's: no move.
	l = newNodeList([]string{host(failing), host(up)})
	if s, code, _ := get(l); s != host(failing) || code != 500 || hits("failing") != 1 {
		t.Fatalf("a node's 500 moved on: %s %d", s, code)
	}
	// A request sent and cut off may have been done: not repeated.
	before := hits("up")
	l = newNodeList([]string{host(hang), host(up)})
	if _, _, err := get(l); err == nil || hits("reset") != 1 || hits("up") != before {
		t.Fatalf("a cut-off request was repeated elsewhere: %v, %d cut, %d on the next node", err, hits("reset"), hits("up")-before)
	}
	// Every node down: the last refusal comes back.
	l = newNodeList([]string{freeport.Addr(t), freeport.Addr(t)})
	if _, _, err := get(l); err == nil || !neverSent(err) {
		t.Fatalf("all down: %v", err)
	}
}
