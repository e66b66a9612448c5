package server

import (
	"context"
	"testing"
)

func TestEnrollTarget(t *testing.T) {
	cfg := Defaults(t.TempDir())
	cfg.Domain = "example.org"
	cfg.Hosts = []string{"node1.example.org", "10.0.0.1"}
	if _, err := Init(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ api, want string }{
		{"127.0.0.1:8443", "127.0.0.1:8443"},
		{"10.0.0.1:443", "10.0.0.1:443"},
		{"0.0.0.0:8443", "node1.example.org:8443"},
		{"[::]:8443", "node1.example.org:8443"},
		{":8443", "node1.example.org:8443"},
	} {
		cfg.APIAddr = c.api
		a := &Admin{cfg: cfg}
		addr, fp, err := a.EnrollTarget()
		if err != nil || addr != c.want || len(fp) != 64 {
			t.Errorf("api_addr %s: %q %q %v, want %q", c.api, addr, fp, err, c.want)
		}
	}
}
