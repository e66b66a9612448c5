// Package operator is the operator service of a node: accounts, devices and
// contact lists as an operator manages them, policy overrides per account
// and per group with the effective policy the node enforces, groups and
// organisation-wide contact provisioning, and the audit log of every
// operator action. The phonexd commands and the admin panel both go
// through it, so nothing is possible in one and impossible in the other,
// and every change is recorded the same way.
package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/user"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
)

// Errors callers branch on.
var (
	ErrUnknownKey   = errors.New("unknown policy key")
	ErrBadValue     = errors.New("bad policy value")
	ErrNoActor      = errors.New("operator action without an actor")
	ErrBadGroupName = errors.New("bad group name")
)

// Settings is what the service needs from the node's configuration.
type Settings struct {
	Domain  string        // accounts are user@Domain
	CodeTTL time.Duration // default activation code lifetime
	// Defaults is the policy from phonexd.conf, which overrides refine.
	Defaults Policy
	// PollEvery is how often Effective looks at the store's policy
	// generation; 0 means DefaultPoll.
	PollEvery time.Duration
}

// DefaultPoll is how often the effective-policy cache checks the store for
// changes: a change made anywhere applies within it.
const DefaultPoll = 250 * time.Millisecond

// Actor names who performs an operator action, as the audit log shows it:
// "cli:<unix user>" for the commands, the administrator's name for the
// panel.
type Actor string

// CLIActor is the actor of a phonexd command run by the current unix user.
func CLIActor() Actor {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	return Actor("cli:" + name)
}

// Service is the operator service over one store.
type Service struct {
	st  store.Store
	set Settings
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	gen     int64     // policy generation the cache holds
	checked time.Time // when gen was last read
	over    []store.PolicyOverride
	cache   map[string]Policy
}

// Option changes a Service.
type Option func(*Service)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns the service over st.
func New(st store.Store, set Settings, opts ...Option) *Service {
	if set.PollEvery <= 0 {
		set.PollEvery = DefaultPoll
	}
	s := &Service{st: st, set: set, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Store is the store the service works on.
func (s *Service) Store() store.Store { return s.st }

// record appends one action to the audit log. An action that happened but
// could not be recorded is reported as failed: the operator must know the
// log is incomplete.
func (s *Service) record(ctx context.Context, actor Actor, action, target, detail string) error {
	if err := s.st.AppendAudit(ctx, store.AuditEntry{Time: s.now().UTC(), Actor: string(actor), Action: action, Target: target, Detail: detail}); err != nil {
		return fmt.Errorf("%s %s done, but not recorded in the audit log: %w", action, target, err)
	}
	return nil
}

func checkActor(a Actor) error {
	if strings.TrimSpace(string(a)) == "" {
		return ErrNoActor
	}
	return nil
}

// account parses name as an account of this cluster's domain.
func (s *Service) account(name string) (ident.Account, error) {
	acct, err := ident.ParseAccount(name)
	if err != nil {
		return acct, err
	}
	if acct.Domain != s.set.Domain {
		return acct, fmt.Errorf("%s is not in this cluster's domain %s", acct, s.set.Domain)
	}
	return acct, nil
}
