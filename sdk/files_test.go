package sdk_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/sdk"
)

// A file through the cluster with the SDK alone: slots, the two steps,
// upload, download, acknowledgement, and the errors callers branch on.
func TestFiles(t *testing.T) {
	ctx := context.Background()
	a, b := enrolled("filea@example.org", "laptop"), enrolled("fileb@example.org", "phone")
	defer a.Close()
	defer b.Close()
	for _, x := range []struct {
		d    *sdk.Device
		user string
	}{{a, "fileb@example.org"}, {b, "filea@example.org"}} {
		if _, err := x.d.AddContact(ctx, x.user); err != nil {
			t.Fatal(err)
		}
	}
	var sid filecrypt.SlotID
	nonce1, nonce2 := make([]byte, 32), make([]byte, 32)
	rand.Read(sid[:])
	rand.Read(nonce1)
	rand.Read(nonce2)
	proofHash := filecrypt.SlotProofHash(sid, filecrypt.ProveSlot(sid, nonce1))
	c, err := b.PutFileSlots(ctx, "filea@example.org", []sdk.FileSlot{{ID: hex.EncodeToString(sid[:]), Sealed: []byte("sealed"),
		ProofHash: proofHash[:], Nonce2: nonce2}})
	if err != nil || c.Ready != 1 {
		t.Fatalf("put slots: %+v %v", c, err)
	}
	slots, missing, err := a.TakeFileSlots(ctx, "fileb@example.org")
	if err != nil || len(slots) != 1 || len(missing) != 0 {
		t.Fatalf("take: %+v %v %v", slots, missing, err)
	}
	if _, err := a.ProveFileSlot(ctx, slots[0].Device, slots[0].SlotID, filecrypt.ProveSlot(sid, make([]byte, 32))); !errors.Is(err, sdk.ErrSlotProof) {
		t.Fatalf("wrong proof: %v", err)
	}
	got2, err := a.ProveFileSlot(ctx, slots[0].Device, slots[0].SlotID, filecrypt.ProveSlot(sid, nonce1))
	if err != nil || !bytes.Equal(got2, nonce2) {
		t.Fatalf("prove: %v", err)
	}
	if _, _, err := a.TakeFileSlots(ctx, "fileb@example.org"); !errors.Is(err, sdk.ErrNoSlot) {
		t.Fatalf("take with no slot left: %v", err)
	}
	content := make([]byte, 100_000)
	rand.Read(content)
	id, err := a.CreateFile(ctx, "fileb@example.org", int64(len(content)), []byte("header"), []sdk.SlotUse{{Device: slots[0].Device, SlotID: slots[0].SlotID, Nonce2: nonce2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateFile(ctx, "fileb@example.org", 1, []byte("h"), []sdk.SlotUse{{Device: slots[0].Device, SlotID: slots[0].SlotID, Nonce2: nonce2}}); !errors.Is(err, sdk.ErrSlotUsed) {
		t.Fatalf("second upload on the slot: %v", err)
	}
	if err := a.UploadFile(ctx, id, bytes.NewReader(content), int64(len(content)), nil); err != nil {
		t.Fatal(err)
	}
	in, _, err := b.Files(ctx)
	if err != nil || len(in) != 1 || in[0].ID != id || string(in[0].Header) != "header" {
		t.Fatalf("incoming: %+v %v", in, err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "ct"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := b.DownloadFile(ctx, id, f, in[0].Size, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(f.Name()); !bytes.Equal(got, content) {
		t.Fatal("downloaded ciphertext differs")
	}
	if err := b.AckFile(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, out, err := a.Files(ctx)
	if err != nil || len(out) != 1 || out[0].State != "delivered" || !out[0].Devices[0].Delivered {
		t.Fatalf("outgoing: %+v %v", out, err)
	}
}
