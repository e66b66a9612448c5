package store

import (
	"context"
	"errors"
	"time"
)

// Errors of the file service's store methods.
var (
	ErrSlotUsed      = errors.New("file slot already used by an upload")
	ErrSlotExpired   = errors.New("file slot expired")
	ErrSlotNotProven = errors.New("file slot not proven")
	ErrSlotNotYours  = errors.New("file slot taken by another device")
	ErrSlotNonce     = errors.New("file slot second nonce does not match")
	ErrSlotsFull     = errors.New("file slots per contact at their cap")
	ErrPairCap       = errors.New("stored files between the two accounts at their cap")
)

// Slot states.
const (
	SlotReady  = "ready"
	SlotTaken  = "taken"
	SlotProven = "proven"
	SlotUsed   = "used"
)

// FileSlot is a recipient device's half-key slot for one contact: opaque
// to the node but for the hash of the proof it expects.
type FileSlot struct {
	DeviceID    int64  // the recipient device that made it
	Contact     string // the account that may take it
	SlotID      string
	Sealed      []byte
	ProofHash   []byte
	State       string
	TakerDevice int64
	Nonce2      []byte
	Created     time.Time
	Expires     time.Time // a ready slot's life, or the deadline of a take
}

// SlotCount is a device's slots for one contact.
type SlotCount struct {
	Contact      string
	Ready, Taken int
}

// SlotUse names a proven slot an upload consumes.
type SlotUse struct {
	DeviceID int64
	SlotID   string
	Nonce2   []byte
}

// StoredFile is one file: an opaque ciphertext of a declared size and an
// opaque header.
type StoredFile struct {
	ID               string
	SenderAccount    int64
	SenderDevice     int64
	Sender           string // user@domain/device
	RecipientAccount int64
	Recipient        string // user@domain
	Size             int64
	Header           []byte
	Offset           int64 // bytes durably received
	State            string
	Created          time.Time
	Expires          time.Time

	// Files across clusters (federated_files.go): on the recipient's node
	// the sender is of a peer cluster (SenderAccount and SenderDevice 0,
	// Sender the remote device); on the sender's node the recipient is
	// (RecipientAccount 0, Recipient the remote account).
	RemoteSender  string // user@domain/device of a peer cluster
	Origin        string // the peer domain whose node pushed the file
	OriginID      string // that node's id of the file
	RemoteAccount string // user@domain of RemoteSender
}

// FileTarget is one device a file is for.
type FileTarget struct {
	DeviceID int64
	Device   string // user@domain/device
	SlotID   string // "" for the sender's own devices
	Nonce2   []byte
	Acked    *time.Time
}

// FileLimits are checked in the transaction that creates a file.
type FileLimits struct {
	PairCap int   // files holding content from the sender's account to the recipient's
	Quota   int64 // bytes of content the sender's account may hold
}

// Files is the state of the file service.
type Files interface {
	// AddFileSlots stores slots of a device for a contact, all or none:
	// ErrSlotsFull beyond max ready or taken ones, ErrExists for an id
	// already stored. It returns the ready count after.
	AddFileSlots(ctx context.Context, deviceID int64, contact string, slots []FileSlot, max int, now time.Time) (int, error)
	FileSlotCounts(ctx context.Context, deviceID int64, now time.Time) ([]SlotCount, error)
	// TakeFileSlot marks the oldest ready, unexpired slot of a device for
	// contact as taken by taker until takeUntil: ErrNotFound when none.
	TakeFileSlot(ctx context.Context, deviceID int64, contact string, taker int64, takeUntil, now time.Time) (FileSlot, error)
	FileSlot(ctx context.Context, deviceID int64, slotID string) (FileSlot, error)
	// ProveFileSlot moves a slot taken by taker to proven and returns its
	// nonce2; a slot already proven by taker answers again, so a lost
	// answer can be asked for.
	ProveFileSlot(ctx context.Context, deviceID int64, slotID string, taker int64, now time.Time) ([]byte, error)
	// CreateFile checks the limits, consumes every slot (proven by the
	// sender device, unexpired, nonce2 matching) and stores the file and
	// its targets, all or nothing.
	CreateFile(ctx context.Context, f StoredFile, slots []SlotUse, targets []FileTarget, lim FileLimits, now time.Time) error
	StoredFile(ctx context.Context, id string) (StoredFile, error)
	FileTargets(ctx context.Context, id string) ([]FileTarget, error)
	SetFileOffset(ctx context.Context, id string, offset int64) error
	SetFileState(ctx context.Context, id, state string) error
	// AckFile records a device's acknowledgement; it reports whether every
	// target has acknowledged.
	AckFile(ctx context.Context, id string, deviceID int64, now time.Time) (bool, error)
	// IncomingFiles lists complete files for a device it has not acknowledged.
	IncomingFiles(ctx context.Context, deviceID int64, now time.Time) ([]StoredFile, []FileTarget, error)
	OutgoingFiles(ctx context.Context, deviceID int64) ([]StoredFile, error)
	// ExpiredFiles lists files past their expiry; DeleteFile forgets one.
	ExpiredFiles(ctx context.Context, now time.Time, limit int) ([]string, error)
	DeleteFile(ctx context.Context, id string) error
	// DeleteExpiredSlots forgets ready slots past their life and takes past
	// their deadline; used slots go with their file.
	DeleteExpiredSlots(ctx context.Context, now time.Time) (int, error)
}

// SlotError names the slot an upload's creation failed on.
type SlotError struct {
	SlotID string
	Err    error
}

func (e *SlotError) Error() string { return "slot " + e.SlotID + ": " + e.Err.Error() }
func (e *SlotError) Unwrap() error { return e.Err }
