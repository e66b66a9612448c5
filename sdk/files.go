package sdk

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/client"
)

// Files on the home cluster (docs/files-node.md). These calls move opaque
// blobs: the slots' sealed half-keys, a file's header and its ciphertext
// are made and opened on the devices; the cluster checks contacts, slots,
// quotas and expiry, and deletes a file once every device has it.

// Errors of the file service, for errors.Is.
var (
	ErrFileNotContact  error = &api.Error{Code: api.CodeNotContact, Message: "not each other's contacts"}
	ErrNoSlot          error = &api.Error{Code: api.CodeNoSlot, Message: "no file slot"}
	ErrSlotUsed        error = &api.Error{Code: api.CodeSlotUsed, Message: "file slot already used"}
	ErrSlotExpired     error = &api.Error{Code: api.CodeSlotExpired, Message: "file slot expired"}
	ErrSlotProof       error = &api.Error{Code: api.CodeSlotProof, Message: "wrong first nonce for the file slot"}
	ErrFileTooLarge    error = &api.Error{Code: api.CodeFileTooLarge, Message: "file above the cluster's maximum"}
	ErrQuota           error = &api.Error{Code: api.CodeQuota, Message: "file quota exceeded"}
	ErrPairCap         error = &api.Error{Code: api.CodePairCap, Message: "too many files waiting for this contact"}
	ErrStorageFull     error = &api.Error{Code: api.CodeStorageFull, Message: "the cluster's disk is full"}
	ErrFileUnavailable error = &api.Error{Code: api.CodeFileUnavailable, Message: "file not offered to this device"}
)

// FileSlot is one half-key slot this device offers a contact: the parts
// of a filecrypt slot offer the cluster keeps (ID in lowercase hex).
type FileSlot struct {
	ID        string `json:"id"`
	Sealed    []byte `json:"sealed"`
	ProofHash []byte `json:"proof_hash"`
	Nonce2    []byte `json:"nonce2"`
}

// SlotCount is how many slots this device holds for a contact.
type SlotCount struct {
	Contact string `json:"contact"`
	Ready   int    `json:"ready"`
	Taken   int    `json:"taken"`
	Max     int    `json:"max"` // refill up to it
}

// TakenSlot is a sealed slot of a recipient device, handed to this device once.
type TakenSlot struct {
	Device  string    `json:"device"`
	SlotID  string    `json:"slot_id"`
	Sealed  []byte    `json:"sealed"`
	Expires time.Time `json:"expires"`
}

// SlotUse names a proven slot for an upload.
type SlotUse struct {
	Device string `json:"device"`
	SlotID string `json:"slot_id"`
	Nonce2 []byte `json:"nonce2"`
}

// IncomingFile is a complete file offered to this device.
type IncomingFile struct {
	ID      string    `json:"id"`
	Sender  string    `json:"sender"`
	Size    int64     `json:"size"`
	Header  []byte    `json:"header"`
	SlotID  string    `json:"slot_id,omitempty"`
	Nonce2  []byte    `json:"nonce2,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// FileDelivery is whether one recipient device has an outgoing file.
type FileDelivery struct {
	Device    string     `json:"device"`
	Delivered bool       `json:"delivered"`
	At        *time.Time `json:"delivered_at,omitempty"`
}

// OutgoingFile is a file this device uploads or uploaded.
type OutgoingFile struct {
	ID        string         `json:"id"`
	Recipient string         `json:"recipient"`
	Size      int64          `json:"size"`
	Offset    int64          `json:"offset"`
	State     string         `json:"state"` // uploading, complete, delivered
	Created   time.Time      `json:"created"`
	Expires   time.Time      `json:"expires"`
	Devices   []FileDelivery `json:"devices"`
}

// Progress reports bytes done of a transfer's total.
type Progress func(done, total int64)

// PutFileSlots offers slots to contact; it returns the counts after.
func (d *Device) PutFileSlots(ctx context.Context, contact string, slots []FileSlot) (SlotCount, error) {
	in := make([]api.FileSlot, len(slots))
	for i, s := range slots {
		in[i] = api.FileSlot(s)
	}
	c, err := d.p.PutFileSlots(ctx, contact, in)
	return SlotCount(c), err
}

// FileSlotCounts tells how many slots each contact has left, to refill.
func (d *Device) FileSlotCounts(ctx context.Context) ([]SlotCount, error) {
	cs, err := d.p.FileSlotCounts(ctx)
	out := make([]SlotCount, len(cs))
	for i, c := range cs {
		out[i] = SlotCount(c)
	}
	return out, err
}

// TakeFileSlots takes one slot of each of recipient's devices (step 1);
// missing names the devices that have none left.
func (d *Device) TakeFileSlots(ctx context.Context, recipient string) (slots []TakenSlot, missing []string, err error) {
	t, err := d.p.TakeFileSlots(ctx, recipient)
	for _, s := range t.Slots {
		slots = append(slots, TakenSlot(s))
	}
	return slots, t.Missing, err
}

// ProveFileSlot sends the proof of an opened slot and returns its second
// nonce (step 2).
func (d *Device) ProveFileSlot(ctx context.Context, device, slotID string, proof []byte) ([]byte, error) {
	return d.p.ProveFileSlot(ctx, device, slotID, proof)
}

// CreateFile starts an upload of size bytes of ciphertext to recipient's
// devices named in slots (and this account's other devices); it returns
// the file id.
func (d *Device) CreateFile(ctx context.Context, recipient string, size int64, header []byte, slots []SlotUse) (string, error) {
	uses := make([]api.FileSlotUse, len(slots))
	for i, s := range slots {
		uses[i] = api.FileSlotUse(s)
	}
	fc, err := d.p.CreateFile(ctx, api.FileCreate{Recipient: recipient, Size: size, Header: header, Slots: uses})
	return fc.ID, err
}

// UploadFile sends the ciphertext from where the cluster stopped: run it
// again after a broken connection or a killed process.
func (d *Device) UploadFile(ctx context.Context, id string, src io.ReaderAt, size int64, progress Progress) error {
	return d.p.UploadFile(ctx, id, src, size, client.Progress(progress))
}

// Files lists the files offered to this device and those it sends.
func (d *Device) Files(ctx context.Context) ([]IncomingFile, []OutgoingFile, error) {
	l, err := d.p.Files(ctx)
	if err != nil {
		return nil, nil, err
	}
	in := make([]IncomingFile, len(l.Incoming))
	for i, f := range l.Incoming {
		in[i] = IncomingFile(f)
	}
	out := make([]OutgoingFile, len(l.Outgoing))
	for i, f := range l.Outgoing {
		o := OutgoingFile{ID: f.ID, Recipient: f.Recipient, Size: f.Size, Offset: f.Offset, State: f.State, Created: f.Created, Expires: f.Expires}
		for _, x := range f.Devices {
			o.Devices = append(o.Devices, FileDelivery(x))
		}
		out[i] = o
	}
	return in, out, nil
}

// DownloadFile writes a file's ciphertext to dst, after what dst already
// holds: run it again to resume.
func (d *Device) DownloadFile(ctx context.Context, id string, dst *os.File, size int64, progress Progress) error {
	return d.p.DownloadFile(ctx, id, dst, size, client.Progress(progress))
}

// CancelFile withdraws a file this device sends, complete or not: the
// cluster deletes it and frees the quota it held.
func (d *Device) CancelFile(ctx context.Context, id string) error {
	return d.p.CancelFile(ctx, id)
}

// AckFile tells the cluster this device has the file; once every device
// has, the cluster deletes it.
func (d *Device) AckFile(ctx context.Context, id string) error {
	return d.p.AckFile(ctx, id)
}
