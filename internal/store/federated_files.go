package store

import (
	"context"
	"time"
)

// States of a file forwarded to a peer cluster.
const (
	ForwardWaiting = "waiting" // the peer has not taken the file yet
	ForwardSent    = "sent"    // the peer committed the whole file
	ForwardRefused = "refused" // the peer refused it for good
)

// RemoteFileTarget is a device of a peer cluster a forwarded file is for.
type RemoteFileTarget struct {
	Device string // user@domain/device
	SlotID string
	Nonce2 []byte
	Acked  *time.Time
}

// FileForward is the sender's node's state of a file for a peer cluster.
type FileForward struct {
	FileID   string
	Domain   string
	State    string
	RemoteID string // the peer's id of the file, once it took the offer
	Error    string // the peer's refusal code
}

// FederatedFiles is the state of files across clusters: on the sender's
// node, the files it forwards to a peer's node; on the recipient's node,
// the files a peer's node pushed.
type FederatedFiles interface {
	// CreateOutboundFile stores a file for an account of domain (f.Recipient
	// names it; f.RecipientAccount is 0) with the sender's own other devices
	// as local targets and the remote devices to forward it to, all or
	// nothing, within the sender account's quota.
	CreateOutboundFile(ctx context.Context, f StoredFile, targets []FileTarget, remote []RemoteFileTarget, domain string, lim FileLimits) error
	FileForward(ctx context.Context, fileID string) (FileForward, error)
	// WaitingForwards lists complete files whose forward is waiting.
	WaitingForwards(ctx context.Context, limit int) ([]FileForward, error)
	SetFileForward(ctx context.Context, fw FileForward) error
	RemoteFileTargets(ctx context.Context, fileID string) ([]RemoteFileTarget, error)
	// AckRemoteFileTarget records that a remote device has the file.
	AckRemoteFileTarget(ctx context.Context, fileID, device string, at time.Time) error

	// CreateInboundFile stores a file a peer's node pushed (f.Origin,
	// f.OriginID, f.RemoteSender, f.RemoteAccount set; SenderAccount and
	// SenderDevice 0), consuming every slot (proven by taker, the remote
	// device's id, unexpired, nonce2 matching), within the remote account's
	// quota and pair cap. ErrExists when (Origin, OriginID) is stored.
	CreateInboundFile(ctx context.Context, f StoredFile, slots []SlotUse, taker int64, targets []FileTarget, lim FileLimits, now time.Time) error
	InboundFile(ctx context.Context, origin, originID string) (StoredFile, error)
}
