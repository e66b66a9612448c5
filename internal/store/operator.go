package store

import (
	"context"
	"time"
)

// Policy scopes: an override applies to one account or to every member of
// a group.
const (
	ScopeAccount = "account"
	ScopeGroup   = "group"
)

// PolicyScope names what a policy override applies to.
type PolicyScope struct {
	Kind string // ScopeAccount or ScopeGroup
	Name string // user@domain or the group's name
}

// PolicyOverride is one stored override of a node setting.
type PolicyOverride struct {
	Scope   PolicyScope
	Key     string
	Value   string
	Updated time.Time
}

// Group is a named set of accounts that policies and contact provisioning
// apply to.
type Group struct {
	Name    string
	Created time.Time
	Members int
}

// AuditEntry is one operator action. It never holds message content or
// contact lists: Target names the account, device, group or policy acted
// on, Detail the parameters (a policy's new value, a code's lifetime).
type AuditEntry struct {
	ID     int64
	Time   time.Time
	Actor  string // "cli:<unix user>" or the administrator's name
	Action string // "user.add", "policy.set", ...
	Target string
	Detail string
}

// AccountSummary is an account as a list shows it: no secrets.
type AccountSummary struct {
	ID      int64
	Name    string
	Status  string
	Created time.Time
	Attempt Attempts
	Login   Attempts
	Devices int
}

// Operator is the state of the operator service: policy overrides, groups,
// provisioned contacts and the audit log.
type Operator interface {
	// SetPolicy stores an override; an empty value removes it.
	SetPolicy(ctx context.Context, scope PolicyScope, key, value string, now time.Time) error
	// Policies lists every override, by scope then key.
	Policies(ctx context.Context) ([]PolicyOverride, error)
	// PolicyGeneration counts changes to policies, groups and group
	// memberships by any process, so a node can cache effective policies
	// and drop the cache when it moves.
	PolicyGeneration(ctx context.Context) (int64, error)

	CreateGroup(ctx context.Context, name string, now time.Time) error
	// DeleteGroup removes a group, its memberships and its policies; the
	// contacts provisioned from it stay.
	DeleteGroup(ctx context.Context, name string) error
	Groups(ctx context.Context) ([]Group, error)
	AddGroupMember(ctx context.Context, group, account string) error
	RemoveGroupMember(ctx context.Context, group, account string) error
	GroupMembers(ctx context.Context, group string) ([]string, error)
	// AccountGroups lists the groups an account is a member of, by name.
	AccountGroups(ctx context.Context, account string) ([]string, error)

	// ProvisionContact puts contact on the account's contact list unless
	// it was provisioned there before (the account may since have removed
	// it, and that choice stands), and records that it was. It reports
	// whether the contact was added now.
	ProvisionContact(ctx context.Context, accountID int64, contact string, now time.Time) (bool, error)
	// ProvisionedContacts lists the contacts ever provisioned to an
	// account (still listed or not).
	ProvisionedContacts(ctx context.Context, accountID int64) ([]string, error)

	// AccountPage lists up to limit accounts whose name contains search
	// ("" for all), in name order (bytewise) after the name after ("" from
	// the start), each with its number of devices; CountAccounts counts
	// the accounts search matches. The panel pages through many accounts
	// with them.
	AccountPage(ctx context.Context, search, after string, limit int) ([]AccountSummary, error)
	CountAccounts(ctx context.Context, search string) (int, error)

	AppendAudit(ctx context.Context, e AuditEntry) error
	// Audit returns entries at or after since, oldest first, at most limit
	// (0: no limit; the newest when cut).
	Audit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error)
}
