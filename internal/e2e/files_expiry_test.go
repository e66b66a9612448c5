package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// encChunk is a full chunk of ciphertext in the node's copy: 64 KiB of
// content and its 16-byte tag (docs/files.md).
const encChunk = 64<<10 + 16

// filesPair starts a node with the given settings and two contacts, alpha
// (a1) and bravo (b1), bravo's slots offered.
func filesPair(t *testing.T, conf ...string) *cluster {
	c := newCluster(t)
	if len(conf) > 0 {
		c.configure(conf...)
	}
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	l := c.listen("bravo/b1")
	waitFor(t, "bravo's slots", 20*time.Second, func() bool { return l.first("file_slots").Text != "" })
	l.stop()
	return c
}

// A file not fetched before its expiry is deleted on the node; files
// shows it expired and get says so, writing nothing.
func TestFileExpiry(t *testing.T) {
	c := filesPair(t, "file_expiry = 4s")
	src := filepath.Join(c.tmp, "late.bin")
	randomFile(t, src, 100<<10)
	_, res := sendFileLines(t, c.mustPx("alpha/a1", "send-file", "bravo@example.org", src, "--json"))
	if f, ok := findFile(c.files("bravo/b1"), res.ID); !ok || f.State != "offered" {
		t.Fatalf("before expiry: %+v (found %v)", f, ok)
	}
	stored := filepath.Join(c.data, "files", res.ID)
	if _, err := os.Stat(stored); err != nil {
		t.Fatalf("the node's copy before expiry: %v", err)
	}
	waitFor(t, "the node deletes the expired file", 20*time.Second, func() bool {
		_, err := os.Stat(stored)
		return os.IsNotExist(err)
	})
	if f, ok := findFile(c.files("bravo/b1"), res.ID); !ok || f.State != "expired" {
		t.Fatalf("after expiry: %+v (found %v)", f, ok)
	}
	dst := filepath.Join(c.tmp, "late-got")
	r := c.px("bravo/b1", "get", res.ID, "-o", dst)
	if r.code == 0 || !strings.Contains(r.err, "file expired") {
		t.Fatalf("get after expiry: exit %d %q", r.code, r.err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("get after expiry wrote %s", dst)
	}
}

// The node's stored copy is damaged in ways a byte flip does not cover:
// each fails at the recipient with its own error and writes nothing.
func TestFileTampering(t *testing.T) {
	c := filesPair(t)
	src := filepath.Join(c.tmp, "doc.bin")
	randomFile(t, src, 3*(64<<10)+777) // three full chunks and a short final one
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"last chunk dropped", func(b []byte) []byte {
			return b[:3*encChunk]
		}, "content truncated"},
		{"chunks swapped", func(b []byte) []byte {
			x := append([]byte(nil), b[encChunk:2*encChunk]...)
			copy(b[encChunk:2*encChunk], b[:encChunk])
			copy(b[:encChunk], x)
			return b
		}, "chunks reordered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, res := sendFileLines(t, c.mustPx("alpha/a1", "send-file", "bravo@example.org", src, "--json"))
			stored := filepath.Join(c.data, "files", res.ID)
			b, err := os.ReadFile(stored)
			if err != nil {
				t.Fatalf("the node's copy: %v", err)
			}
			if err := os.WriteFile(stored, tc.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(c.tmp, "got-"+res.ID)
			r := c.px("bravo/b1", "get", res.ID, "-o", dst)
			if r.code == 0 || !strings.Contains(r.err, tc.want) {
				t.Fatalf("get: exit %d %q, want an error with %q", r.code, r.err, tc.want)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatalf("a damaged file appeared at %s", dst)
			}
			if ents, _ := filepath.Glob(dst + "*"); len(ents) != 0 {
				t.Fatalf("get left %v", ents)
			}
			if f, _ := findFile(c.files("bravo/b1"), res.ID); f.State != "failed" {
				t.Fatalf("files after a failed get: %+v", f)
			}
		})
	}
}
