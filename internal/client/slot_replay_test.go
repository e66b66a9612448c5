package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/keys"
)

// A slot carries exactly one file: the same proven slot presented for a
// second upload, after the first went through, is refused by the node
// before anything is stored, and the first file still arrives whole.
func TestSlotReplayRefused(t *testing.T) {
	c := startCluster(t, nil)
	alpha := c.enroll("alpha@example.org", "a1", "alpha pw", keys.SuiteEC)
	bravo := c.enroll("bravo@example.org", "b1", "bravo pw", keys.SuiteEC)
	ctx := context.Background()
	if _, err := alpha.AddContact(ctx, "bravo@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := bravo.AddContact(ctx, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	if n, err := bravo.RefillFileSlots(ctx); err != nil || n == 0 {
		t.Fatalf("refill: %d %v", n, err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "doc.bin")
	content := make([]byte, 100<<10)
	rand.Read(content)
	if err := os.WriteFile(src, content, 0o600); err != nil {
		t.Fatal(err)
	}
	req, err := client.PrepareSend(ctx, alpha, "bravo@example.org", src)
	if err != nil {
		t.Fatal(err)
	}
	// SendFile resumes the prepared transfer: it creates and uploads it.
	sent, err := alpha.SendFile(ctx, "bravo@example.org", src, nil)
	if err != nil || !sent.Resumed {
		t.Fatalf("send: %+v %v", sent, err)
	}
	// The replay: the same slot, its nonce and header again.
	if _, err := alpha.CreateFile(ctx, req); apiCode(err) != api.CodeSlotUsed {
		t.Fatalf("second upload on a used slot: %v, want %s", err, api.CodeSlotUsed)
	}
	list, err := bravo.Files(ctx)
	if err != nil || len(list.Incoming) != 1 || list.Incoming[0].ID != sent.ID {
		t.Fatalf("bravo is offered %+v (%v), want only %s", list.Incoming, err, sent.ID)
	}
	dst := filepath.Join(dir, "got")
	if _, err := bravo.GetFile(ctx, sent.ID, dst, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
		t.Fatal("the file differs")
	}
}
