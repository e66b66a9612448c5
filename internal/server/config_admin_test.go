package server

import (
	"strings"
	"testing"
	"time"
)

func TestAdminConfig(t *testing.T) {
	c := Defaults("d")
	c.Admin.Addr = "127.0.0.1:9443"
	c.Admin.FreshFor = 2 * time.Minute
	got, err := ParseConfig("d", c.Encode())
	if err != nil || got.Admin != c.Admin {
		t.Fatalf("round trip: %+v %v", got.Admin, err)
	}
	for _, bad := range []string{"admin_addr = nohost", "admin_idle_timeout = 10s", "admin_max_age = 1m\nadmin_idle_timeout = 5m", "admin_fresh = 1s", "admin_lock_after = 0", "admin_lock_for = x"} {
		if _, err := ParseConfig("d", []byte("domain = example.org\n"+bad+"\n")); err == nil || !strings.Contains(err.Error(), "admin") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
