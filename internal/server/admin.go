package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

// Admin runs the operator's commands on a data directory; it works while the
// node serves the same directory.
type Admin struct {
	cfg Config
	st  store.Store
	now func() time.Time
}

// OpenAdmin opens the data directory's store for administration.
func OpenAdmin(ctx context.Context, cfg Config) (*Admin, error) {
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		return nil, err
	}
	return &Admin{cfg: cfg, st: st, now: time.Now}, nil
}

// Close releases the store.
func (a *Admin) Close() error { return a.st.Close() }

// Activation is a new account's one-time code.
type Activation struct {
	User    string    `json:"user"`
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
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

// AddUser creates an account and its activation code. ttl 0 means the
// configured default.
func (a *Admin) AddUser(ctx context.Context, name string, ttl time.Duration) (Activation, error) {
	acct, err := a.account(name)
	if err != nil {
		return Activation{}, err
	}
	if ttl <= 0 {
		ttl = a.cfg.CodeTTL
	}
	now := a.now()
	rec, err := a.st.CreateAccount(ctx, acct.String(), now)
	if err != nil {
		return Activation{}, fmt.Errorf("add %s: %w", acct, err)
	}
	code := NewCode()
	exp := now.Add(ttl).UTC().Truncate(time.Second)
	if err := a.st.AddCode(ctx, rec.ID, CodeHash(code), exp); err != nil {
		return Activation{}, fmt.Errorf("add %s: %w", acct, err)
	}
	return Activation{User: acct.String(), Code: code, Expires: exp}, nil
}

// UserInfo is one line of 'phonexd user list'.
type UserInfo struct {
	User    string    `json:"user"`
	Status  string    `json:"status"`
	Devices int       `json:"devices"`
	Created time.Time `json:"created"`
	Locked  bool      `json:"locked,omitempty"`
	// LoginLocked: new-device logins are locked; existing devices still
	// unlock.
	LoginLocked bool `json:"login_locked,omitempty"`
}

// Users lists every account.
func (a *Admin) Users(ctx context.Context) ([]UserInfo, error) {
	accts, err := a.st.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	out := []UserInfo{}
	for _, ac := range accts {
		ds, err := a.st.Devices(ctx, ac.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, UserInfo{User: ac.Name, Status: ac.Status, Devices: len(ds), Created: ac.Created.UTC(),
			Locked: ac.Attempt.Failures >= a.cfg.AccountAttempts.LockAfter, LoginLocked: ac.Login.Failures >= a.cfg.LoginAttempts.LockAfter})
	}
	return out, nil
}

// SetUserEnabled disables or re-enables an account.
func (a *Admin) SetUserEnabled(ctx context.Context, name string, enabled bool) error {
	acct, err := a.account(name)
	if err != nil {
		return err
	}
	rec, err := a.st.Account(ctx, acct.String())
	if err != nil {
		return fmt.Errorf("%s: %w", acct, err)
	}
	status := store.StatusDisabled
	if enabled {
		status = store.StatusActive
		if len(rec.Secrets.AuthPub) == 0 {
			status = store.StatusPending
		}
	}
	return a.st.SetAccountStatus(ctx, acct.String(), status)
}

// RemoveUser deletes an account, its devices and its contact entries.
func (a *Admin) RemoveUser(ctx context.Context, name string) error {
	acct, err := a.account(name)
	if err != nil {
		return err
	}
	if err := a.st.DeleteAccount(ctx, acct.String()); err != nil {
		return fmt.Errorf("remove %s: %w", acct, err)
	}
	return nil
}

// DeviceInfo is one line of 'phonexd device list'.
type DeviceInfo struct {
	Device   string    `json:"device"`
	Suite    string    `json:"suite"`
	Status   string    `json:"status"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Failures int       `json:"failed_attempts"`
	Locked   bool      `json:"locked,omitempty"`
}

// Devices lists the devices of one account, or of all if name is empty.
func (a *Admin) Devices(ctx context.Context, name string) ([]DeviceInfo, error) {
	var accts []store.Account
	if name != "" {
		acct, err := a.account(name)
		if err != nil {
			return nil, err
		}
		rec, err := a.st.Account(ctx, acct.String())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", acct, err)
		}
		accts = []store.Account{rec}
	} else {
		var err error
		if accts, err = a.st.Accounts(ctx); err != nil {
			return nil, err
		}
	}
	out := []DeviceInfo{}
	for _, ac := range accts {
		ds, err := a.st.Devices(ctx, ac.ID)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			out = append(out, DeviceInfo{Device: ac.Name + "/" + d.Name, Suite: d.Suite, Status: d.Status, Serial: d.Serial,
				NotAfter: d.NotAfter.UTC(), Failures: d.Attempt.Failures, Locked: d.Attempt.Failures >= a.cfg.DeviceAttempts.LockAfter})
		}
	}
	return out, nil
}

func (a *Admin) device(ctx context.Context, name string) (store.Device, error) {
	id, err := ident.ParseDevice(name)
	if err != nil {
		return store.Device{}, err
	}
	d, err := a.st.DeviceByName(ctx, id.Account.String(), id.Name)
	if errors.Is(err, store.ErrNotFound) {
		return d, fmt.Errorf("no device %s (see phonexd device list)", id)
	}
	return d, err
}

// RevokeDevice revokes a device: its certificate is refused from now on and
// its profile can no longer be unlocked.
func (a *Admin) RevokeDevice(ctx context.Context, name string) error {
	d, err := a.device(ctx, name)
	if err != nil {
		return err
	}
	return a.st.SetDeviceStatus(ctx, d.ID, store.StatusRevoked)
}

// Unlock lifts a lock-out. For user@domain/device it clears that device's
// counter and the account's; for user@domain, the account's, all its
// devices' and the new-device login counter.
func (a *Admin) Unlock(ctx context.Context, name string) error {
	if d, err := a.device(ctx, name); err == nil {
		if err := a.st.ResetAttempts(ctx, store.SubjectDevice, d.ID); err != nil {
			return err
		}
		return a.st.ResetAttempts(ctx, store.SubjectAccount, d.AccountID)
	}
	acct, err := a.account(name)
	if err != nil {
		return err
	}
	rec, err := a.st.Account(ctx, acct.String())
	if err != nil {
		return fmt.Errorf("%s: %w", acct, err)
	}
	ds, err := a.st.Devices(ctx, rec.ID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := a.st.ResetAttempts(ctx, store.SubjectDevice, d.ID); err != nil {
			return err
		}
	}
	if err := a.st.ResetAttempts(ctx, store.SubjectLogin, rec.ID); err != nil {
		return err
	}
	return a.st.ResetAttempts(ctx, store.SubjectAccount, rec.ID)
}

// ContactInfo is one line of 'phonexd contacts list'.
type ContactInfo struct {
	Contact string `json:"contact"`
	Status  string `json:"status"` // the contact account's status; "removed" if it is gone
}

// contactPair checks an account and a contact for the contact commands:
// both of this cluster, not the same, the contact existing and enrolled.
func (a *Admin) contactPair(ctx context.Context, owner, contact string) (store.Account, ident.Account, error) {
	o, err := a.account(owner)
	if err != nil {
		return store.Account{}, ident.Account{}, err
	}
	rec, err := a.st.Account(ctx, o.String())
	if err != nil {
		return rec, ident.Account{}, fmt.Errorf("%s: %w", o, err)
	}
	c, err := a.account(contact)
	if err != nil {
		return rec, c, err
	}
	if c == o {
		return rec, c, fmt.Errorf("%s cannot be its own contact", o)
	}
	return rec, c, nil
}

// AddContact lists contact in owner's contact list, as owner's device would
// with 'phonex contacts add': for accounts that have only standard phones,
// which cannot manage their list themselves.
func (a *Admin) AddContact(ctx context.Context, owner, contact string) error {
	rec, c, err := a.contactPair(ctx, owner, contact)
	if err != nil {
		return err
	}
	crec, err := a.st.Account(ctx, c.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && crec.Status == store.StatusPending) {
		return fmt.Errorf("no account %s on this cluster (or it has no device yet)", c)
	}
	if err != nil {
		return err
	}
	return a.st.AddContact(ctx, rec.ID, crec.Name, a.now())
}

// RemoveContact takes contact off owner's contact list.
func (a *Admin) RemoveContact(ctx context.Context, owner, contact string) error {
	rec, c, err := a.contactPair(ctx, owner, contact)
	if err != nil {
		return err
	}
	if err := a.st.RemoveContact(ctx, rec.ID, c.String()); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s is not on the contact list of %s", c, rec.Name)
	} else if err != nil {
		return err
	}
	return nil
}

// Contacts is owner's contact list.
func (a *Admin) Contacts(ctx context.Context, owner string) ([]ContactInfo, error) {
	o, err := a.account(owner)
	if err != nil {
		return nil, err
	}
	rec, err := a.st.Account(ctx, o.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	names, err := a.st.Contacts(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	out := []ContactInfo{}
	for _, n := range names {
		st := "removed"
		if c, err := a.st.Account(ctx, n); err == nil {
			st = c.Status
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out = append(out, ContactInfo{Contact: n, Status: st})
	}
	return out, nil
}
