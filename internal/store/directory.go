package store

import (
	"context"
	"errors"
	"time"
)

// Errors of the directory's store methods.
var (
	ErrNumberTaken   = errors.New("number belongs to another account")
	ErrClaimAttempts = errors.New("too many wrong codes for this claim")
	ErrBudget        = errors.New("directory query budget spent")
	ErrClaimsOpen    = errors.New("too many number claims in progress for the account")
)

// Directory notice kinds.
const (
	DirNoticeCode        = "claim_code"  // the one-time code of a claim
	DirNoticeReplacement = "replacement" // another device asked to replace the published keys
)

// DirKey is one published device certificate.
type DirKey struct {
	Device string `json:"device"`
	Cert   []byte `json:"cert"` // DER
}

// DirEntry is a published number: its SIP address and its account's keys.
type DirEntry struct {
	E164      string
	Hash      []byte // the number's discovery hash
	AccountID int64
	AOR       string // user@domain
	Keys      []DirKey
	Published time.Time
}

// DirClaim is an ownership challenge in progress.
type DirClaim struct {
	ID        string
	E164      string
	AccountID int64
	DeviceID  int64 // the device that asked, the only one that may answer
	CodeHash  []byte
	Attempts  int
	Created   time.Time
	Expires   time.Time
}

// DirReplacement is a publication from a device whose key was not
// published, waiting out its delay.
type DirReplacement struct {
	ID        string
	E164      string
	AccountID int64
	DeviceID  int64
	AOR       string
	Keys      []DirKey
	Requested time.Time
	Effective time.Time
}

// DirNotice is something the directory tells one device; it is handed out
// once.
type DirNotice struct {
	ID         int64
	DeviceID   int64
	Kind       string
	E164       string
	Ref        string // the claim or replacement
	Code       string // claim_code only
	FromDevice string // the device that asked
	Effective  time.Time
	Created    time.Time
	Expires    time.Time
}

// Directory is the state of the number directory. None of its methods
// records what was looked up.
type Directory interface {
	// CreateDirClaim stores a claim and its notices, all or nothing:
	// ErrNumberTaken when another account publishes the number,
	// ErrClaimsOpen when the account already has maxOpen unexpired claims.
	CreateDirClaim(ctx context.Context, c DirClaim, notices []DirNotice, maxOpen int, now time.Time) error
	// ProveDirClaim counts one answer to a claim of deviceID and, when
	// check accepts the stored claim, deletes it with its notices and
	// returns it. A wrong answer returns check's error; the answer after
	// maxAttempts wrong ones deletes the claim (ErrClaimAttempts).
	// ErrNotFound: no such unexpired claim of that device.
	ProveDirClaim(ctx context.Context, id string, deviceID int64, maxAttempts int, now time.Time, check func(DirClaim) error) (DirClaim, error)
	// PublishDir stores an entry for a number free or already the
	// account's (replacing what it published and any pending
	// replacement); ErrNumberTaken otherwise.
	PublishDir(ctx context.Context, e DirEntry) error
	DirEntry(ctx context.Context, e164 string) (DirEntry, error)
	DirEntriesByAOR(ctx context.Context, aor string) ([]DirEntry, error)
	DirEntriesByHash(ctx context.Context, hashes [][]byte) ([]DirEntry, error)
	DirEntries(ctx context.Context) ([]DirEntry, error)
	// AddDirReplacement stores a pending replacement (replacing an earlier
	// one for the number) and its notices in one transaction.
	AddDirReplacement(ctx context.Context, r DirReplacement, notices []DirNotice) error
	DirReplacementFor(ctx context.Context, e164 string) (DirReplacement, error)
	DirReplacement(ctx context.Context, id string) (DirReplacement, error)
	DeleteDirReplacement(ctx context.Context, id string) error
	// ApplyDueDirReplacements publishes every replacement whose delay has
	// passed and returns the numbers it changed.
	ApplyDueDirReplacements(ctx context.Context, now time.Time) ([]string, error)
	// TakeDirNotices returns a device's unexpired notices (only those of
	// ref when it is not empty) and deletes them; expired ones are pruned.
	TakeDirNotices(ctx context.Context, deviceID int64, ref string, now time.Time) ([]DirNotice, error)
	// SpendDirBudget counts n queries of a device in a fixed window;
	// beyond limit it counts nothing and fails with ErrBudget. It returns
	// the end of the current window.
	SpendDirBudget(ctx context.Context, deviceID int64, n, limit int, window time.Duration, now time.Time) (time.Time, error)
	// DeleteExpiredDir forgets expired claims and notices.
	DeleteExpiredDir(ctx context.Context, now time.Time) error
}
