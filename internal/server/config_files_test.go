package server

import (
	"testing"
	"time"
)

func TestConfigFiles(t *testing.T) {
	c := Defaults("/d")
	c.Files.MaxSlots, c.Files.Expiry, c.Files.MaxFileSize, c.Files.Quota, c.Files.PairCap = 8, 72*time.Hour, 1<<20, 1<<30, 3
	back, err := ParseConfig("/d", c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.Files != c.Files {
		t.Fatalf("round trip: %+v, want %+v", back.Files, c.Files)
	}
	for _, in := range []string{"file_slots_max = 0", "file_slots_max = 65", "file_expiry = 0s", "file_take_ttl = soon",
		"file_max_size = 0", "file_quota = 10\nfile_max_size = 11", "file_pair_cap = 0"} {
		if _, err := ParseConfig("/d", []byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
