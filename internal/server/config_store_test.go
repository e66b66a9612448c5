package server

import (
	"strings"
	"testing"
)

func TestConfigStore(t *testing.T) {
	c := Defaults("/data")
	if c.StoreSpec() != "/data" || c.StoreName() != "sqlite:/data" {
		t.Fatalf("default store %q %q", c.StoreSpec(), c.StoreName())
	}
	c.Store = "postgres://phonex:pw@db.example.org/phonex"
	back, err := ParseConfig("/data", c.Encode())
	if err != nil || back.Store != c.Store {
		t.Fatalf("round trip: %q %v", back.Store, err)
	}
	if strings.Contains(back.StoreName(), "pw") {
		t.Fatalf("store name shows the password: %s", back.StoreName())
	}
	if _, err := ParseConfig("/data", []byte("store = mysql://x/y\n")); err == nil || !strings.Contains(err.Error(), "store") {
		t.Fatalf("bad store accepted: %v", err)
	}
}
