package sdk

import (
	"context"

	"github.com/phonex/phonex/internal/client"
)

// End-to-end encrypted files, whole (docs/files.md "Using it"): the slots
// this device offers its contacts, sending a file through them, listing
// and fetching. Listen refills the slots by itself.

// Errors of file transfers, for errors.Is.
var (
	// ErrNoFileSlot: a recipient device has no half-key slot left for
	// this account; it must come online (run listen) to refill.
	ErrNoFileSlot = client.ErrNoFileSlot
	// ErrFileExists: GetFile does not overwrite a file.
	ErrFileExists = client.ErrFileExists
	// ErrFileExpired: the file was not fetched before its expiry.
	ErrFileExpired = client.ErrFileExpired
)

// FileProgress reports a phase of a transfer (hash, encrypt, upload,
// download, decrypt) and its bytes done of total.
type FileProgress = client.FileProgress

// SentFile is the outcome of SendFile.
type SentFile = client.SentFile

// FileEntry is one incoming or outgoing transfer.
type FileEntry = client.FileEntry

// ReceivedFile is the outcome of GetFile.
type ReceivedFile = client.ReceivedFile

// RefillFileSlots offers every contact slots up to the cluster's maximum;
// it returns how many it made.
func (d *Device) RefillFileSlots(ctx context.Context) (int, error) { return d.p.RefillFileSlots(ctx) }

// SendFile encrypts the file at path for the devices of to (one slot each)
// and this account's other devices, and uploads it. Run again with the
// same path and recipient, it resumes an interrupted transfer.
func (d *Device) SendFile(ctx context.Context, to, path string, progress FileProgress) (SentFile, error) {
	return d.p.SendFile(ctx, to, path, progress)
}

// FileTransfers lists incoming files (metadata decrypted, content not
// fetched) and outgoing ones.
func (d *Device) FileTransfers(ctx context.Context) ([]FileEntry, error) {
	return d.p.FileTransfers(ctx)
}

// GetFile downloads, verifies and decrypts an incoming file to dst (empty:
// its name in the current directory); dst appears only once the whole
// file verified. Run again, it resumes the download.
func (d *Device) GetFile(ctx context.Context, id, dst string, progress FileProgress) (ReceivedFile, error) {
	return d.p.GetFile(ctx, id, dst, progress)
}
