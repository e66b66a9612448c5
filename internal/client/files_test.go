package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/internal/keys"
)

// cancelAfter is a file that cancels the upload once limit bytes were
// read from it, as a killed sender would stop.
type cancelAfter struct {
	data   []byte
	limit  int64
	read   atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) ReadAt(p []byte, off int64) (int, error) {
	if c.read.Add(int64(len(p))) > c.limit {
		c.cancel()
	}
	if off >= int64(len(c.data)) {
		return 0, io.EOF
	}
	n := copy(p, c.data[off:])
	return n, nil
}

// Upload and download through the node with the device calls: the upload
// stops half-way and the next run sends only what the node lacks; the
// download resumes after the bytes a first run kept.
func TestFileTransferResumes(t *testing.T) {
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
	var sid filecrypt.SlotID
	nonce1, nonce2 := make([]byte, 32), make([]byte, 32)
	rand.Read(sid[:])
	rand.Read(nonce1)
	rand.Read(nonce2)
	proofHash := filecrypt.SlotProofHash(sid, filecrypt.ProveSlot(sid, nonce1))
	if _, err := bravo.PutFileSlots(ctx, "alpha@example.org", []api.FileSlot{{ID: hex.EncodeToString(sid[:]), Sealed: []byte("sealed"),
		ProofHash: proofHash[:], Nonce2: nonce2}}); err != nil {
		t.Fatal(err)
	}
	taken, err := alpha.TakeFileSlots(ctx, "bravo@example.org")
	if err != nil || len(taken.Slots) != 1 {
		t.Fatalf("take: %+v %v", taken, err)
	}
	got2, err := alpha.ProveFileSlot(ctx, taken.Slots[0].Device, taken.Slots[0].SlotID, filecrypt.ProveSlot(sid, nonce1))
	if err != nil || !bytes.Equal(got2, nonce2) {
		t.Fatalf("prove: %v", err)
	}
	content := make([]byte, 20<<20)
	rand.Read(content)
	fc, err := alpha.CreateFile(ctx, api.FileCreate{Recipient: "bravo@example.org", Size: int64(len(content)), Header: []byte("hdr"),
		Slots: []api.FileSlotUse{{Device: taken.Slots[0].Device, SlotID: taken.Slots[0].SlotID, Nonce2: nonce2}}})
	if err != nil {
		t.Fatal(err)
	}

	cctx, cancel := context.WithCancel(ctx)
	src := &cancelAfter{data: content, limit: 12 << 20, cancel: cancel}
	if err := alpha.UploadFile(cctx, fc.ID, src, int64(len(content)), nil); err == nil {
		t.Fatal("the stopped upload reported success")
	}
	cancel()
	first := int64(-1)
	err = alpha.UploadFile(ctx, fc.ID, bytes.NewReader(content), int64(len(content)), func(done, total int64) {
		if first < 0 {
			first = done
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The first 8 MiB chunk was acknowledged before the stop: it is not sent again.
	if first < 8<<20 {
		t.Fatalf("the resumed upload started at %d bytes", first)
	}

	list, err := bravo.Files(ctx)
	if err != nil || len(list.Incoming) != 1 || list.Incoming[0].ID != fc.ID {
		t.Fatalf("incoming: %+v %v", list, err)
	}
	path := filepath.Join(t.TempDir(), "dl")
	if err := os.WriteFile(path, content[:5<<20], 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	first = -1
	if err := bravo.DownloadFile(ctx, fc.ID, f, int64(len(content)), func(done, total int64) {
		if first < 0 {
			first = done
		}
	}); err != nil {
		t.Fatal(err)
	}
	if first <= 5<<20 {
		t.Fatalf("the download started again at %d", first)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, content) {
		t.Fatal("downloaded file differs")
	}
	if err := bravo.AckFile(ctx, fc.ID); err != nil {
		t.Fatal(err)
	}
	if err := bravo.AckFile(ctx, fc.ID); apiCode(err) != api.CodeFileUnavailable {
		t.Fatalf("second ack: %v", err)
	}
	out, err := alpha.Files(ctx)
	if err != nil || len(out.Outgoing) != 1 || out.Outgoing[0].State != api.FileDelivered {
		t.Fatalf("outgoing: %+v %v", out, err)
	}
}
