package files_test

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/server/files"
)

// The filesystem store: nothing is readable before Commit, bytes of a
// write never acknowledged are dropped, a part file shorter than the
// recorded offset is refused rather than filled with zeros, and ids cannot
// name paths outside the directory.
func TestFSStore(t *testing.T) {
	dir := t.TempDir()
	fs, err := files.NewFSStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	const id = "abcdefgh234567"
	if err := fs.Create(id); err != nil {
		t.Fatal(err)
	}
	if err := fs.Create(id); err == nil {
		t.Fatal("second Create of one id")
	}
	if _, err := fs.Open(id); err == nil {
		t.Fatal("an upload is readable before Commit")
	}
	if n, err := fs.Append(id, 0, strings.NewReader("hello ")); err != nil || n != 6 {
		t.Fatalf("append: %d %v", n, err)
	}
	// A torn write: bytes on disk beyond the recorded offset 6.
	f, _ := os.OpenFile(filepath.Join(dir, id+".part"), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("GARBAGE")
	f.Close()
	if n, err := fs.Append(id, 6, strings.NewReader("world")); err != nil || n != 11 {
		t.Fatalf("append after a torn write: %d %v", n, err)
	}
	if _, err := fs.Append(id, 20, strings.NewReader("x")); err == nil {
		t.Fatal("append past the part file's end")
	}
	if err := fs.Commit(id); err != nil {
		t.Fatal(err)
	}
	b, err := fs.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(b)
	b.Close()
	if !bytes.Equal(got, []byte("hello world")) {
		t.Fatalf("content %q", got)
	}
	if ids, err := fs.List(); err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("list: %v %v", ids, err)
	}
	if err := fs.Remove(id); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove(id); err != nil {
		t.Fatalf("remove of a missing file: %v", err)
	}
	for _, bad := range []string{"", "../x", "a/b", "ABC", strings.Repeat("a", 65), "a.part"} {
		if err := fs.Create(bad); err == nil {
			t.Errorf("Create(%q) accepted", bad)
		}
	}
}
