package server

import (
	"context"
	"fmt"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/operator"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/storeopen"
)

// Admin runs the operator's commands on a data directory; it works while the
// node serves the same directory. The account, device, contact, group and
// policy operations are those of the operator service (Operator), recorded
// in its audit log under the admin's actor.
type Admin struct {
	cfg   Config
	st    store.Store
	now   func() time.Time
	op    *operator.Service
	actor operator.Actor
}

// OpenAdmin opens the data directory's store for administration; its
// actions are recorded as the current unix user's ("cli:<user>").
func OpenAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	st, err := storeopen.Open(ctx, cfg.StoreSpec())
	if err != nil {
		return nil, err
	}
	return &Admin{cfg: cfg, st: st, now: time.Now, op: operator.New(st, OperatorSettings(cfg)), actor: operator.CLIActor()}, nil
}

// OperatorSettings is what the operator service takes from a node's
// configuration: the defaults that policy overrides refine.
func OperatorSettings(cfg Config) operator.Settings {
	return operator.Settings{Domain: cfg.Domain, CodeTTL: cfg.CodeTTL,
		Defaults: operator.Policy{MessageRate: cfg.MessageRate, MessageBurst: cfg.MessageBurst, MaxStoredBytes: cfg.MaxStoredBytes,
			FileQuota: cfg.Files.Quota, FileMaxSize: cfg.Files.MaxFileSize, FileExpiry: cfg.Files.Expiry, RegistrationExpiry: DefaultRegistrationExpiry,
			DeviceAttemptsLock: cfg.DeviceAttempts.LockAfter, AccountAttemptsLock: cfg.AccountAttempts.LockAfter, LoginAttemptsLock: cfg.LoginAttempts.LockAfter}}
}

// DefaultRegistrationExpiry is the longest SIP registration without a
// policy override.
const DefaultRegistrationExpiry = time.Hour

// Operator is the operator service the admin's commands go through.
func (a *Admin) Operator() *operator.Service { return a.op }

// Actor is who the admin's actions are recorded as.
func (a *Admin) Actor() operator.Actor { return a.actor }

// Close releases the store.
func (a *Admin) Close() error { return a.st.Close() }

// Types of the operator service, under their earlier names.
type (
	Activation  = operator.Activation
	UserInfo    = operator.UserInfo
	DeviceInfo  = operator.DeviceInfo
	ContactInfo = operator.ContactInfo
)

// AddUser creates an account and its activation code. ttl 0 means the
// configured default.
func (a *Admin) AddUser(ctx context.Context, name string, ttl time.Duration) (Activation, error) {
	return a.op.AddUser(ctx, a.actor, name, ttl)
}

// Users lists every account.
func (a *Admin) Users(ctx context.Context) ([]UserInfo, error) { return a.op.Users(ctx) }

// SetUserEnabled disables or re-enables an account.
func (a *Admin) SetUserEnabled(ctx context.Context, name string, enabled bool) error {
	return a.op.SetUserEnabled(ctx, a.actor, name, enabled)
}

// RemoveUser deletes an account, its devices and its contact entries.
func (a *Admin) RemoveUser(ctx context.Context, name string) error {
	return a.op.RemoveUser(ctx, a.actor, name)
}

// Devices lists the devices of one account, or of all if name is empty.
func (a *Admin) Devices(ctx context.Context, name string) ([]DeviceInfo, error) {
	return a.op.Devices(ctx, name)
}

// RevokeDevice revokes a device: its certificate is refused from now on and
// its profile can no longer be unlocked.
func (a *Admin) RevokeDevice(ctx context.Context, name string) error {
	return a.op.RevokeDevice(ctx, a.actor, name)
}

// Unlock lifts a lock-out (operator.Service.Unlock).
func (a *Admin) Unlock(ctx context.Context, name string) error {
	return a.op.Unlock(ctx, a.actor, name)
}

// AddContact lists contact in owner's contact list, for accounts that have
// only standard phones, which cannot manage their list themselves.
func (a *Admin) AddContact(ctx context.Context, owner, contact string) error {
	return a.op.AddContact(ctx, a.actor, owner, contact)
}

// RemoveContact takes contact off owner's contact list.
func (a *Admin) RemoveContact(ctx context.Context, owner, contact string) error {
	return a.op.RemoveContact(ctx, a.actor, owner, contact)
}

// Contacts is owner's contact list.
func (a *Admin) Contacts(ctx context.Context, owner string) ([]ContactInfo, error) {
	return a.op.Contacts(ctx, owner)
}

func (a *Admin) account(name string) (ident.Account, error) {
	acct, err := ident.ParseAccount(name)
	if err != nil {
		return acct, err
	}
	if acct.Domain != a.cfg.Domain {
		return acct, fmt.Errorf("%s is not in this cluster's domain %s", acct, a.cfg.Domain)
	}
	return acct, nil
}
