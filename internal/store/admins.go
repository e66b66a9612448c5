package store

import (
	"context"
	"errors"
	"time"
)

// ErrAdminLocked is returned by AdminFailure once an administrator's
// sign-ins are locked out.
var ErrAdminLocked = errors.New("administrator sign-in locked")

// AdminAccount is an administrator of the web panel. PassHash is a slow
// hash in PHC string form; TOTPSecret the raw RFC 6238 key.
type AdminAccount struct {
	Name        string
	PassHash    string
	TOTPSecret  []byte
	LastStep    int64 // the last TOTP time step accepted, so a code works once
	Failures    int
	LockedUntil time.Time
	Created     time.Time
}

// AdminSession is a signed-in browser. Only the hash of the cookie's value
// is stored, so a copy of the database cannot sign in.
type AdminSession struct {
	IDHash  []byte
	Admin   string
	CSRF    []byte // the synchronizer token bound to the session
	Created time.Time
	Seen    time.Time
	AuthAt  time.Time // last password + second-factor check (fresh sessions)
}

// NodeCounts are the store's live figures for the panel.
type NodeCounts struct {
	Accounts, Pending, Disabled   int64
	Devices, Revoked              int64
	MessagesWaiting, BytesWaiting int64
	DeviceFailures, LoginFailures int64 // failed password attempts counted now
	FilesStored                   int64
}

// Admins is the web panel's state: administrators and their sessions, and
// the node's figures for its live state page. Its actions go to the
// operator audit log (Operator).
type Admins interface {
	CreateAdmin(ctx context.Context, a AdminAccount) error
	AdminAccount(ctx context.Context, name string) (AdminAccount, error)
	AdminAccounts(ctx context.Context) ([]AdminAccount, error)
	// DeleteAdmin removes an administrator and its sessions.
	DeleteAdmin(ctx context.Context, name string) error
	// ResetAdmin replaces the credentials, clears the lock-out and ends
	// every session of the administrator.
	ResetAdmin(ctx context.Context, name, passHash string, totp []byte) error
	// AdminFailure counts one failed sign-in; at lockAfter failures the
	// administrator is locked until now+lockFor. A locked administrator
	// gets ErrAdminLocked without counting.
	AdminFailure(ctx context.Context, name string, now time.Time, lockAfter int, lockFor time.Duration) (AdminAccount, error)
	// AdminSignedIn records a successful sign-in with TOTP step: it clears
	// the failures, or fails with ErrReplayed when step is not after the
	// last accepted one (RFC 6238 §5.2: a code is accepted once).
	AdminSignedIn(ctx context.Context, name string, step int64) error
	ResetAdminFailures(ctx context.Context, name string) error

	CreateAdminSession(ctx context.Context, s AdminSession) error
	AdminSession(ctx context.Context, idHash []byte) (AdminSession, error)
	TouchAdminSession(ctx context.Context, idHash []byte, seen time.Time) error
	DeleteAdminSession(ctx context.Context, idHash []byte) error
	// PruneAdminSessions forgets sessions idle since seenBefore or created
	// before createdBefore.
	PruneAdminSessions(ctx context.Context, seenBefore, createdBefore time.Time) (int, error)

	NodeCounts(ctx context.Context) (NodeCounts, error)
}
