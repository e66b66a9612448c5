package files_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/server/files"
)

// BenchmarkTransfer uploads 32 MiB of ciphertext in 8 MiB PATCHes and
// downloads it, over TLS 1.3 with client certificates on loopback, with
// the data synced to disk as the node does. MB/s counts the bytes once
// each way.
func BenchmarkTransfer(b *testing.B) {
	const size = 32 << 20
	e := newEnv(b, files.DefaultLimits, nil)
	content := random(size)
	b.SetBytes(2 * size)
	for b.Loop() {
		sec := map[string]slotSecrets{b1: e.putSlots("b1", alpha, 1)}
		fc, err := e.create("a1", bravo, size, e.takeAndProve("a1", bravo, sec))
		e.must(err, "create")
		for off := 0; off < size; off += 8 << 20 {
			if r := e.patch("a1", fc.ID, int64(off), content[off:off+8<<20]); r.status != http.StatusNoContent {
				b.Fatalf("upload: %+v", r.err)
			}
		}
		r := e.do("b1", "GET", api.PathFiles+"/"+fc.ID, nil, nil)
		if !bytes.Equal(r.body, content) {
			b.Fatal("download differs")
		}
		e.must(e.call("b1", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, nil), "ack")
		e.must(e.call("a2", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, nil), "ack")
	}
}
