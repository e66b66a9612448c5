package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
)

// Activation is a new account's one-time code.
type Activation struct {
	User    string    `json:"user"`
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
}

// AddUser creates an account and its activation code. ttl 0 means the
// configured default. The audit log records the account and the code's
// expiry, never the code.
func (s *Service) AddUser(ctx context.Context, actor Actor, name string, ttl time.Duration) (Activation, error) {
	if err := checkActor(actor); err != nil {
		return Activation{}, err
	}
	acct, err := s.account(name)
	if err != nil {
		return Activation{}, err
	}
	if ttl <= 0 {
		ttl = s.set.CodeTTL
	}
	now := s.now()
	rec, err := s.st.CreateAccount(ctx, acct.String(), now)
	if err != nil {
		return Activation{}, fmt.Errorf("add %s: %w", acct, err)
	}
	code := NewCode()
	exp := now.Add(ttl).UTC().Truncate(time.Second)
	if err := s.st.AddCode(ctx, rec.ID, CodeHash(code), exp); err != nil {
		return Activation{}, fmt.Errorf("add %s: %w", acct, err)
	}
	act := Activation{User: acct.String(), Code: code, Expires: exp}
	return act, s.record(ctx, actor, "user.add", act.User, "code expires "+exp.Format(time.RFC3339))
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

// Users lists every account, in name order.
func (s *Service) Users(ctx context.Context) ([]UserInfo, error) {
	out := []UserInfo{}
	after := ""
	for {
		p, err := s.UsersPage(ctx, "", after, MaxPage)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Users...)
		if p.Next == "" {
			return out, nil
		}
		after = p.Next
	}
}

// UserPage is one page of accounts.
type UserPage struct {
	Users []UserInfo `json:"users"`
	Total int        `json:"total"` // accounts the search matches
	// Next is the cursor of the next page ("" on the last).
	Next string `json:"next,omitempty"`
}

// MaxPage is the most accounts one page holds.
const MaxPage = 500

// UsersPage lists up to limit accounts whose name contains search, in name
// order after the cursor after (the Next of the page before; "" for the
// first): a panel lists many accounts a page at a time, and each page
// costs the same however many accounts there are.
func (s *Service) UsersPage(ctx context.Context, search, after string, limit int) (UserPage, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	search = strings.ToLower(strings.TrimSpace(search))
	// One more than asked tells whether a next page exists.
	rows, err := s.st.AccountPage(ctx, search, after, limit+1)
	if err != nil {
		return UserPage{}, err
	}
	total, err := s.st.CountAccounts(ctx, search)
	if err != nil {
		return UserPage{}, err
	}
	page := UserPage{Users: []UserInfo{}, Total: total}
	if len(rows) > limit {
		rows = rows[:limit]
		page.Next = rows[limit-1].Name
	}
	for _, ac := range rows {
		p, err := s.Effective(ctx, ac.Name)
		if err != nil {
			return UserPage{}, err
		}
		page.Users = append(page.Users, UserInfo{User: ac.Name, Status: ac.Status, Devices: ac.Devices, Created: ac.Created.UTC(),
			Locked: ac.Attempt.Failures >= p.AccountAttemptsLock, LoginLocked: ac.Login.Failures >= p.LoginAttemptsLock})
	}
	return page, nil
}

// SetUserEnabled disables or re-enables an account.
func (s *Service) SetUserEnabled(ctx context.Context, actor Actor, name string, enabled bool) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	acct, err := s.account(name)
	if err != nil {
		return err
	}
	rec, err := s.st.Account(ctx, acct.String())
	if err != nil {
		return fmt.Errorf("%s: %w", acct, err)
	}
	status, action := store.StatusDisabled, "user.disable"
	if enabled {
		status, action = store.StatusActive, "user.enable"
		if len(rec.Secrets.AuthPub) == 0 {
			status = store.StatusPending
		}
	}
	if err := s.st.SetAccountStatus(ctx, acct.String(), status); err != nil {
		return err
	}
	return s.record(ctx, actor, action, acct.String(), "")
}

// RemoveUser deletes an account, its devices, its contact entries, its
// group memberships and its policy overrides.
func (s *Service) RemoveUser(ctx context.Context, actor Actor, name string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	acct, err := s.account(name)
	if err != nil {
		return err
	}
	if err := s.st.DeleteAccount(ctx, acct.String()); err != nil {
		return fmt.Errorf("remove %s: %w", acct, err)
	}
	return s.record(ctx, actor, "user.remove", acct.String(), "")
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
func (s *Service) Devices(ctx context.Context, name string) ([]DeviceInfo, error) {
	var accts []store.Account
	if name != "" {
		acct, err := s.account(name)
		if err != nil {
			return nil, err
		}
		rec, err := s.st.Account(ctx, acct.String())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", acct, err)
		}
		accts = []store.Account{rec}
	} else {
		var err error
		if accts, err = s.st.Accounts(ctx); err != nil {
			return nil, err
		}
	}
	out := []DeviceInfo{}
	for _, ac := range accts {
		ds, err := s.st.Devices(ctx, ac.ID)
		if err != nil {
			return nil, err
		}
		p, err := s.Effective(ctx, ac.Name)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			out = append(out, DeviceInfo{Device: ac.Name + "/" + d.Name, Suite: d.Suite, Status: d.Status, Serial: d.Serial,
				NotAfter: d.NotAfter.UTC(), Failures: d.Attempt.Failures, Locked: d.Attempt.Failures >= p.DeviceAttemptsLock})
		}
	}
	return out, nil
}

// Device finds a device by user@domain/name.
func (s *Service) Device(ctx context.Context, name string) (store.Device, error) {
	id, err := ident.ParseDevice(name)
	if err != nil {
		return store.Device{}, err
	}
	d, err := s.st.DeviceByName(ctx, id.Account.String(), id.Name)
	if errors.Is(err, store.ErrNotFound) {
		return d, fmt.Errorf("no device %s (see phonexd device list): %w", id, store.ErrNotFound)
	}
	return d, err
}

// RevokeDevice revokes a device: its certificate is refused from now on and
// its profile can no longer be unlocked.
func (s *Service) RevokeDevice(ctx context.Context, actor Actor, name string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	d, err := s.Device(ctx, name)
	if err != nil {
		return err
	}
	if err := s.st.SetDeviceStatus(ctx, d.ID, store.StatusRevoked); err != nil {
		return err
	}
	return s.record(ctx, actor, "device.revoke", name, "")
}

// Unlock lifts a lock-out. For user@domain/device it clears that device's
// counter and the account's; for user@domain, the account's, all its
// devices' and the new-device login counter.
func (s *Service) Unlock(ctx context.Context, actor Actor, name string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	if err := s.unlock(ctx, name); err != nil {
		return err
	}
	return s.record(ctx, actor, "device.unlock", name, "")
}

func (s *Service) unlock(ctx context.Context, name string) error {
	if d, err := s.Device(ctx, name); err == nil {
		if err := s.st.ResetAttempts(ctx, store.SubjectDevice, d.ID); err != nil {
			return err
		}
		return s.st.ResetAttempts(ctx, store.SubjectAccount, d.AccountID)
	}
	acct, err := s.account(name)
	if err != nil {
		return err
	}
	rec, err := s.st.Account(ctx, acct.String())
	if err != nil {
		return fmt.Errorf("%s: %w", acct, err)
	}
	ds, err := s.st.Devices(ctx, rec.ID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := s.st.ResetAttempts(ctx, store.SubjectDevice, d.ID); err != nil {
			return err
		}
	}
	if err := s.st.ResetAttempts(ctx, store.SubjectLogin, rec.ID); err != nil {
		return err
	}
	return s.st.ResetAttempts(ctx, store.SubjectAccount, rec.ID)
}

// ContactInfo is one line of 'phonexd contacts list'.
type ContactInfo struct {
	Contact string `json:"contact"`
	Status  string `json:"status"` // the contact account's status; "removed" if it is gone
	// Provisioned: a group provisioning covered this entry (put it there,
	// or found it listed already).
	Provisioned bool `json:"provisioned,omitempty"`
}

// contactPair checks an account and a contact for the contact commands:
// both of this cluster, not the same.
func (s *Service) contactPair(ctx context.Context, owner, contact string) (store.Account, ident.Account, error) {
	o, err := s.account(owner)
	if err != nil {
		return store.Account{}, ident.Account{}, err
	}
	rec, err := s.st.Account(ctx, o.String())
	if err != nil {
		return rec, ident.Account{}, fmt.Errorf("%s: %w", o, err)
	}
	c, err := s.account(contact)
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
// which cannot manage their list themselves. The audit log names the
// account only, never the contact: who talks to whom is not the log's.
func (s *Service) AddContact(ctx context.Context, actor Actor, owner, contact string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	rec, c, err := s.contactPair(ctx, owner, contact)
	if err != nil {
		return err
	}
	crec, err := s.st.Account(ctx, c.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && crec.Status == store.StatusPending) {
		return fmt.Errorf("no account %s on this cluster (or it has no device yet)", c)
	}
	if err != nil {
		return err
	}
	if err := s.st.AddContact(ctx, rec.ID, crec.Name, s.now()); err != nil {
		return err
	}
	return s.record(ctx, actor, "contacts.add", rec.Name, "")
}

// RemoveContact takes contact off owner's contact list.
func (s *Service) RemoveContact(ctx context.Context, actor Actor, owner, contact string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	rec, c, err := s.contactPair(ctx, owner, contact)
	if err != nil {
		return err
	}
	if err := s.st.RemoveContact(ctx, rec.ID, c.String()); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s is not on the contact list of %s", c, rec.Name)
	} else if err != nil {
		return err
	}
	return s.record(ctx, actor, "contacts.remove", rec.Name, "")
}

// Contacts is owner's contact list.
func (s *Service) Contacts(ctx context.Context, owner string) ([]ContactInfo, error) {
	o, err := s.account(owner)
	if err != nil {
		return nil, err
	}
	rec, err := s.st.Account(ctx, o.String())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o, err)
	}
	names, err := s.st.Contacts(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	prov, err := s.st.ProvisionedContacts(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	out := []ContactInfo{}
	for _, n := range names {
		st := "removed"
		if c, err := s.st.Account(ctx, n); err == nil {
			st = c.Status
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		out = append(out, ContactInfo{Contact: n, Status: st, Provisioned: slices.Contains(prov, n)})
	}
	return out, nil
}
