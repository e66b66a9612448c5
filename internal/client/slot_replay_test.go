package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/server"
)

// A slot carries exactly one file: the same proven slot presented for a
// second upload, after the first went through, is refused by the node
// before anything is stored, and the first file still arrives whole; a
// re-use the node forges is refused at the recipient.
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
	// A node that forges the re-use itself offers the same header and
	// ciphertext again under another id: the recipient, whose slot's
	// private half went with the first download, refuses it.
	forged := forgeCopy(t, c, sent.ID)
	dst := filepath.Join(dir, "got")
	if _, err := bravo.GetFile(ctx, sent.ID, dst, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, content) {
		t.Fatal("the file differs")
	}
	dst2 := filepath.Join(dir, "replayed")
	if _, err := bravo.GetFile(ctx, forged, dst2, nil); !errors.Is(err, filecrypt.ErrSlotDestroyed) {
		t.Fatalf("get of a replayed slot: %v, want %v", err, filecrypt.ErrSlotDestroyed)
	}
	if _, err := os.Stat(dst2); !os.IsNotExist(err) {
		t.Fatalf("the replayed file was written to %s", dst2)
	}
}

// forgeCopy plays a dishonest node: it copies a file's record, targets
// and ciphertext under a new id, straight in the node's database.
func forgeCopy(t *testing.T, c *cluster, id string) string {
	t.Helper()
	forged := "z" + id[1:]
	if forged == id {
		forged = "y" + id[1:]
	}
	db, err := sql.Open("sqlite", filepath.Join(c.cfg.DataDir, server.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`INSERT INTO files(id, sender_account, sender_device, recipient_account, size, header, received, state, created, expires)
			SELECT ?, sender_account, sender_device, recipient_account, size, header, received, state, created, expires FROM files WHERE id=?`,
		`INSERT INTO file_targets(file_id, device_id, slot_id, nonce2, acked) SELECT ?, device_id, slot_id, nonce2, acked FROM file_targets WHERE file_id=?`,
	} {
		if _, err := db.Exec(q, forged, id); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(c.cfg.DataDir, server.FilesDir, id))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.cfg.DataDir, server.FilesDir, forged), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return forged
}
