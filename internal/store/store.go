// Package store defines the cluster's persistent state behind one interface,
// so the embedded SQLite implementation (store/sqlite) can be replaced by
// PostgreSQL for clusters that outgrow one node.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors callers branch on.
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrCodeInvalid = errors.New("activation code is not valid")
	ErrCodeExpired = errors.New("activation code has expired")
	ErrCodeUsed    = errors.New("activation code was already used")
	ErrCodeBusy    = errors.New("activation code is being used by another enrollment")
	ErrReplayed    = errors.New("single-use value was already spent")
	ErrStorageFull = errors.New("storage limit reached")
	ErrTooManyKeys = errors.New("too many stored keys")
)

// StorageFullError names the account whose waiting copies would exceed the
// limit; it matches ErrStorageFull.
type StorageFullError struct {
	AccountID int64
}

func (e *StorageFullError) Error() string {
	return fmt.Sprintf("account %d: %v", e.AccountID, ErrStorageFull)
}

func (e *StorageFullError) Is(target error) bool { return target == ErrStorageFull }

// Account statuses.
const (
	StatusPending  = "pending"  // created, no device enrolled yet
	StatusActive   = "active"   // has password material
	StatusDisabled = "disabled" // refused everywhere until enabled
	StatusRevoked  = "revoked"  // devices only
)

// Account is one user@domain.
type Account struct {
	ID      int64
	Name    string
	Status  string
	Created time.Time
	Secrets AccountSecrets
	Attempt Attempts // unlocks of all its devices
	Login   Attempts // new-device logins (password login from no device)
}

// AccountSecrets is what the server holds to let a device log in with the
// password: salts and KDF parameters (public), the account's OPRF key sealed
// with the node's sealing key, and the public key derived from the password.
type AccountSecrets struct {
	KDF        []byte // JSON kdf.Params
	Salts      []byte // JSON kdf.Salts (scrypt and auth salts only)
	SealedOPRF []byte
	AuthPub    []byte // Ed25519 public key
}

// Attempts is a throttle counter.
type Attempts struct {
	Failures int
	Last     time.Time
}

// Device is one enrolled device.
type Device struct {
	ID         int64
	AccountID  int64
	Account    string
	Name       string
	Handle     string // random id the device uses before it can present its certificate
	Suite      string
	Serial     string // current certificate serial (hex)
	Cert       []byte // DER
	KexCert    []byte // DER, ec suite only
	NotAfter   time.Time
	Status     string
	SealedOPRF []byte
	Created    time.Time
	Attempt    Attempts
	Caps       string // comma-separated capability strings
}

// Subject names what an attempt counter belongs to.
type Subject string

const (
	SubjectAccount Subject = "account"
	SubjectDevice  Subject = "device"
	SubjectLogin   Subject = "login" // an account's new-device logins
)

// AttemptSubject is one counter an attempt is counted against.
type AttemptSubject struct {
	Subject Subject
	ID      int64 // account id for SubjectAccount and SubjectLogin
}

// Store is the cluster's state. Every method is safe for concurrent use, also
// from another process (the admin commands) on the same data directory.
type Store interface {
	CreateAccount(ctx context.Context, name string, now time.Time) (Account, error)
	Account(ctx context.Context, name string) (Account, error)
	Accounts(ctx context.Context) ([]Account, error)
	SetAccountStatus(ctx context.Context, name, status string) error
	DeleteAccount(ctx context.Context, name string) error
	SetAccountSecrets(ctx context.Context, accountID int64, s AccountSecrets) error

	AddCode(ctx context.Context, accountID int64, hash []byte, expires time.Time) error
	// ClaimCode reserves an unused code for one enrollment session until
	// claimUntil; a second claimant gets ErrCodeBusy.
	// The code must belong to accountID.
	ClaimCode(ctx context.Context, hash []byte, accountID int64, session string, claimUntil, now time.Time) (int64, error)
	// ReleaseCode ends a session's claim on an unused code, so another
	// enrollment can use it at once.
	ReleaseCode(ctx context.Context, hash []byte, session string) error
	// Enroll consumes the claimed code, stores the account's password
	// material and creates its first device, all or nothing.
	Enroll(ctx context.Context, hash []byte, session string, s AccountSecrets, d Device, now time.Time) (Device, error)

	CreateDevice(ctx context.Context, d Device) (Device, error)
	DeviceByHandle(ctx context.Context, handle string) (Device, error)
	DeviceByName(ctx context.Context, account, name string) (Device, error)
	Devices(ctx context.Context, accountID int64) ([]Device, error)
	// ActiveDevices lists an account's active devices as message routing
	// needs them, without the certificates and secrets Devices reads.
	ActiveDevices(ctx context.Context, accountID int64) ([]DeviceRef, error)
	UpdateDeviceCert(ctx context.Context, id int64, serial string, cert, kex []byte, notAfter time.Time) error
	// SetDeviceStatus changes a device's status; revoking it also forgets
	// the copies waiting for it.
	SetDeviceStatus(ctx context.Context, id int64, status string) error
	SetDeviceOPRF(ctx context.Context, id int64, sealed []byte) error
	// ChangePassword replaces the account's material and one device's OPRF
	// key in one transaction.
	ChangePassword(ctx context.Context, accountID int64, s AccountSecrets, deviceID int64, sealedDevice []byte) error

	// TryAttempt judges and counts one password attempt as one atomic step:
	// it reads the counters of every subject, gives them to judge, and adds
	// one unconfirmed attempt to each (last try at now) only if judge
	// returns nil; otherwise it changes nothing and returns judge's error.
	// No concurrent attempt on the same subjects can interleave, so a
	// decision is always made from the counters it increments. It returns
	// the counters as they were before.
	TryAttempt(ctx context.Context, now time.Time, subjects []AttemptSubject, judge func([]Attempts) error) ([]Attempts, error)
	ResetAttempts(ctx context.Context, subj Subject, id int64) error

	// SpendNonce records a single-use value (by its hash) until expires and
	// fails with ErrReplayed if it was recorded before. Records older than
	// their expiry are pruned, so the table stays bounded by what can still
	// be replayed.
	SpendNonce(ctx context.Context, hash []byte, expires, now time.Time) error

	AddContact(ctx context.Context, accountID int64, contact string, now time.Time) error
	RemoveContact(ctx context.Context, accountID int64, contact string) error
	Contacts(ctx context.Context, accountID int64) ([]string, error)
	HasContact(ctx context.Context, owner, contact string) (bool, error)

	// EnqueueMessage stores one message body and a delivery row per target
	// device, in one transaction: once it returns, the copies survive a crash.
	// When quota > 0 it first checks, in the same transaction, that no
	// target account would then hold more than quota bytes of waiting
	// copies, and refuses with a *StorageFullError otherwise.
	EnqueueMessage(ctx context.Context, m Message, targets []Target, quota int64) (int64, error)
	// Pending returns up to limit of a device's undelivered messages: each
	// sender's in arrival order, the senders taking turns, so one sender's
	// backlog does not hold up the others.
	Pending(ctx context.Context, deviceID int64, limit int) ([]Delivery, error)
	// Delivered forgets one delivery; the body goes when no delivery needs it.
	Delivered(ctx context.Context, seq int64) error
	// StoredBytes is the size of the copies waiting for an account's devices.
	StoredBytes(ctx context.Context, accountID int64) (int64, error)
	// RoutingGeneration counts changes to accounts, their status, active
	// devices and contact lists, by any process. Routing facts read after
	// it was n are at least as new as n; see Message.RouteGeneration.
	RoutingGeneration(ctx context.Context) (int64, error)
	// Waiting reads, in one snapshot, the routing generation and whether a
	// copy is stored for any of the devices (the proxy hands a MESSAGE
	// straight to devices with nothing waiting).
	Waiting(ctx context.Context, deviceIDs []int64) (gen int64, waiting bool, err error)

	SetSIPCredential(ctx context.Context, deviceID int64, username string, ha1 []byte) error
	SIPCredential(ctx context.Context, username string) (Device, []byte, error)
	// SetPhoneLogin stores a phone's digest login by its account's user
	// name; PhoneLogins returns every phone a digest username may name:
	// those logins and a per-device credential of that name.
	SetPhoneLogin(ctx context.Context, deviceID int64, username string, ha1 []byte) error
	PhoneLogins(ctx context.Context, username string) ([]PhoneLogin, error)

	// PutKeys stores what a device publishes in one transaction: all of it
	// or, on any error, nothing.
	PutKeys(ctx context.Context, deviceID int64, up KeyUpload) error
	// TakePrekey returns the device's key of that kind with the lowest id,
	// deleting it when consume is set (one-time keys are handed out once).
	TakePrekey(ctx context.Context, deviceID int64, kind string, consume bool) (Prekey, error)
	CountPrekeys(ctx context.Context, deviceID int64, kind string) (int, error)
	SetDeviceCaps(ctx context.Context, deviceID int64, caps string) error

	Files          // files.go
	FederatedFiles // federated_files.go
	Operator       // operator.go
	Transfer       // transfer.go
	Ops            // ops.go
	Federation     // federation.go
	Directory      // directory.go
	Admins         // admins.go
	Handouts       // handouts.go

	Close() error
}

// PhoneLogin is a standard phone's device and its sealed digest HA1.
type PhoneLogin struct {
	Device Device
	HA1    []byte
}

// Message is a stored SIP MESSAGE body (ciphertext for PhoneX devices).
type Message struct {
	Sender       string // account
	SenderDevice string
	Recipient    string // account
	ContentType  string
	Body         []byte
	Created      time.Time
	// RouteGeneration, when not 0, is the RoutingGeneration the message
	// was routed under: EnqueueMessage then stores it only if that is
	// still the generation in its write transaction, and otherwise
	// refuses with ErrStaleRoute, so routing facts read from a cache are
	// checked where the copies are stored.
	RouteGeneration int64
}

// DeviceRef is an active device as message routing sees it.
type DeviceRef struct {
	ID    int64
	Suite string
}

// Target is one device a message goes to.
type Target struct {
	DeviceID  int64
	AccountID int64 // the account whose storage the copy counts against
}

// Delivery is one copy waiting for a device.
type Delivery struct {
	Seq       int64
	MessageID int64
	Message
}

// KeyUpload is one publication of a device's keys.
type KeyUpload struct {
	// Replace holds the kinds with one current key (the signed prekeys, the
	// message key, the signed capabilities): the key replaces every stored
	// key of its kind, so a rotated key is never handed out again.
	Replace map[string]Prekey
	// Add holds one-time keys, added to those stored (an id already stored
	// is replaced).
	Add map[string][]Prekey
	// Caps, when not nil, replaces the device's capability string.
	Caps *string
	// MaxPerKind caps the keys of one kind stored for the device after the
	// upload; beyond it the upload fails with ErrTooManyKeys. 0: no cap.
	MaxPerKind int
}

// Prekey is an opaque published key (encoded by the ratchet package).
type Prekey struct {
	ID   int64
	Data []byte
}
