package operator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// Policy is what the node enforces for one account: the phonexd.conf
// settings of the same names, refined by overrides.
type Policy struct {
	MessageRate    float64       `json:"message_rate"`     // MESSAGEs per second a sender may average
	MessageBurst   int           `json:"message_burst"`    // and burst
	MaxStoredBytes int64         `json:"max_stored_bytes"` // undelivered copies held for the account
	FileQuota      int64         `json:"file_quota"`       // bytes of files waiting from the account
	FileMaxSize    int64         `json:"file_max_size"`    // largest file the account may send
	FileExpiry     time.Duration `json:"file_expiry"`      // how long the account's files are kept
	// RegistrationExpiry is the longest SIP registration the account's
	// devices get (a longer Expires is cut to it, RFC 3261 §10.3 step 7).
	RegistrationExpiry time.Duration `json:"registration_expiry"`
	// Failed password attempts after which a device's unlocks, the
	// account's unlocks (all devices together) and its new-device logins
	// lock until an operator unlocks them. The node never lets a lock come
	// before its free attempts are spent.
	DeviceAttemptsLock  int `json:"device_attempts_lock"`
	AccountAttemptsLock int `json:"account_attempts_lock"`
	LoginAttemptsLock   int `json:"login_attempts_lock"`
}

// Key describes one policy setting.
type Key struct {
	Name string `json:"key"`
	Help string `json:"help"`
	// parse checks a value and sets it on a policy.
	parse func(p *Policy, v string) error
	get   func(p Policy) string
}

func intKey(name, help string, min, max int64, field func(*Policy) *int64) Key {
	return Key{Name: name, Help: help,
		parse: func(p *Policy, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < min || n > max {
				return fmt.Errorf("%w: %s must be a whole number from %d to %d", ErrBadValue, name, min, max)
			}
			*field(p) = n
			return nil
		},
		get: func(p Policy) string { return strconv.FormatInt(*field(&p), 10) }}
}

func durKey(name, help string, min, max time.Duration, field func(*Policy) *time.Duration) Key {
	return Key{Name: name, Help: help,
		parse: func(p *Policy, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < min || d > max {
				return fmt.Errorf("%w: %s must be a duration from %s to %s (like 90s, 12h)", ErrBadValue, name, min, max)
			}
			*field(p) = d
			return nil
		},
		get: func(p Policy) string { return field(&p).String() }}
}

// Keys lists every policy setting an override may change.
var Keys = []Key{
	{Name: "message_rate", Help: "MESSAGEs per second an account may average when sending",
		parse: func(p *Policy, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f > 0 && f <= 1e6) {
				return fmt.Errorf("%w: message_rate must be a number above 0 (at most 1000000)", ErrBadValue)
			}
			p.MessageRate = f
			return nil
		},
		get: func(p Policy) string { return strconv.FormatFloat(p.MessageRate, 'g', -1, 64) }},
	{Name: "message_burst", Help: "MESSAGEs an account may send in a burst",
		parse: func(p *Policy, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1e6 {
				return fmt.Errorf("%w: message_burst must be a whole number from 1 to 1000000", ErrBadValue)
			}
			p.MessageBurst = n
			return nil
		},
		get: func(p Policy) string { return strconv.Itoa(p.MessageBurst) }},
	intKey("max_stored_bytes", "bytes of undelivered copies held for the account", 1<<10, 1<<40, func(p *Policy) *int64 { return &p.MaxStoredBytes }),
	intKey("file_quota", "bytes of files waiting from the account", 1, 1<<50, func(p *Policy) *int64 { return &p.FileQuota }),
	intKey("file_max_size", "largest file the account may send, in bytes", 1, 1<<50, func(p *Policy) *int64 { return &p.FileMaxSize }),
	durKey("file_expiry", "how long the account's files are kept", time.Second, 10*365*24*time.Hour, func(p *Policy) *time.Duration { return &p.FileExpiry }),
	durKey("registration_expiry", "longest SIP registration of the account's devices", time.Minute, 24*time.Hour, func(p *Policy) *time.Duration { return &p.RegistrationExpiry }),
	smallKey("device_attempts_lock", "failed unlocks of one device before it locks", func(p *Policy) *int { return &p.DeviceAttemptsLock }),
	smallKey("account_attempts_lock", "failed unlocks of all the account's devices before the account locks", func(p *Policy) *int { return &p.AccountAttemptsLock }),
	smallKey("login_attempts_lock", "failed new-device logins before they lock", func(p *Policy) *int { return &p.LoginAttemptsLock }),
}

// smallKey is a count of attempts, 1 to 1000.
func smallKey(name, help string, field func(*Policy) *int) Key {
	return Key{Name: name, Help: help,
		parse: func(p *Policy, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return fmt.Errorf("%w: %s must be a whole number from 1 to 1000", ErrBadValue, name)
			}
			*field(p) = n
			return nil
		},
		get: func(p Policy) string { return strconv.Itoa(*field(&p)) }}
}

func lookupKey(name string) (Key, error) {
	for _, k := range Keys {
		if k.Name == name {
			return k, nil
		}
	}
	names := make([]string, len(Keys))
	for i, k := range Keys {
		names[i] = k.Name
	}
	return Key{}, fmt.Errorf("%w %q: one of %v", ErrUnknownKey, name, names)
}

// Get returns a policy's value of key in the form SetPolicy takes.
func (p Policy) Get(key string) (string, error) {
	k, err := lookupKey(key)
	if err != nil {
		return "", err
	}
	return k.get(p), nil
}

// scope checks and canonicalises a policy scope: an account of this
// cluster, an existing group, or none (the node's defaults, read-only).
func (s *Service) scope(ctx context.Context, account, group string) (store.PolicyScope, error) {
	switch {
	case account != "" && group != "":
		return store.PolicyScope{}, errors.New("give --account or --group, not both")
	case account != "":
		a, err := s.account(account)
		if err != nil {
			return store.PolicyScope{}, err
		}
		if _, err := s.st.Account(ctx, a.String()); err != nil {
			return store.PolicyScope{}, fmt.Errorf("%s: %w", a, err)
		}
		return store.PolicyScope{Kind: store.ScopeAccount, Name: a.String()}, nil
	case group != "":
		if err := checkGroupName(group); err != nil {
			return store.PolicyScope{}, err
		}
		if _, err := s.st.GroupMembers(ctx, group); err != nil {
			return store.PolicyScope{}, err
		}
		return store.PolicyScope{Kind: store.ScopeGroup, Name: group}, nil
	}
	return store.PolicyScope{}, errors.New("a policy override needs --account USER@DOMAIN or --group NAME (the defaults live in phonexd.conf)")
}

// SetPolicy stores an override of key for an account or a group (exactly
// one of them); an empty value removes the override. Nodes apply it within
// their poll interval, without a restart.
func (s *Service) SetPolicy(ctx context.Context, actor Actor, account, group, key, value string) error {
	if err := checkActor(actor); err != nil {
		return err
	}
	k, err := lookupKey(key)
	if err != nil {
		return err
	}
	if value != "" {
		var p Policy
		if err := k.parse(&p, value); err != nil {
			return err
		}
		value = k.get(p) // canonical form
	}
	sc, err := s.scope(ctx, account, group)
	if err != nil {
		return err
	}
	if err := s.st.SetPolicy(ctx, sc, key, value, s.now()); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s %s has no override of %s", sc.Kind, sc.Name, key)
	} else if err != nil {
		return fmt.Errorf("set %s: %w", key, err)
	}
	detail := key + "=" + value
	if value == "" {
		detail = key + " reset"
	}
	return s.record(ctx, actor, "policy.set", sc.Kind+":"+sc.Name, detail)
}

// Setting is one line of 'phonexd policy show': a key's effective value
// and where it comes from ("default", "group:NAME" or "account").
type Setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// ShowPolicy lists every key: for an account its effective values, for a
// group its overrides over the defaults, with neither the defaults.
func (s *Service) ShowPolicy(ctx context.Context, account, group string) ([]Setting, error) {
	var sc store.PolicyScope
	if account != "" || group != "" {
		var err error
		if sc, err = s.scope(ctx, account, group); err != nil {
			return nil, err
		}
	}
	over, err := s.st.Policies(ctx)
	if err != nil {
		return nil, err
	}
	var groups []string
	if sc.Kind == store.ScopeAccount {
		if groups, err = s.st.AccountGroups(ctx, sc.Name); err != nil {
			return nil, err
		}
	} else if sc.Kind == store.ScopeGroup {
		groups = []string{sc.Name}
	}
	p, src := resolve(s.set.Defaults, over, sc.Kind == store.ScopeAccount, sc.Name, groups)
	out := make([]Setting, 0, len(Keys))
	for _, k := range Keys {
		out = append(out, Setting{Key: k.Name, Value: k.get(p), Source: src[k.Name]})
	}
	return out, nil
}

// resolve applies overrides to defaults: the first of groups (in name
// order) that sets a key, then the account's own override, which wins. It
// also says where each value came from. A stored value that no longer
// parses (written by a newer version) is ignored.
func resolve(def Policy, over []store.PolicyOverride, isAccount bool, account string, groups []string) (Policy, map[string]string) {
	p := def
	src := map[string]string{}
	for _, k := range Keys {
		src[k.Name] = "default"
	}
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	set := map[string]bool{}
	for _, g := range sorted {
		for _, o := range over {
			if o.Scope.Kind != store.ScopeGroup || o.Scope.Name != g || set[o.Key] {
				continue
			}
			if k, err := lookupKey(o.Key); err == nil && k.parse(&p, o.Value) == nil {
				set[o.Key] = true
				src[o.Key] = "group:" + g
			}
		}
	}
	if isAccount {
		for _, o := range over {
			if o.Scope.Kind != store.ScopeAccount || o.Scope.Name != account {
				continue
			}
			if k, err := lookupKey(o.Key); err == nil && k.parse(&p, o.Value) == nil {
				src[o.Key] = "account"
			}
		}
	}
	return p, src
}

// Effective is the policy the node enforces for account (user@domain). It
// is served from a cache that is dropped when the store's policy generation
// moves, read at most every PollEvery: a change made by any process applies
// within that time. On a store error the defaults apply and the error is
// returned with them.
func (s *Service) Effective(ctx context.Context, account string) (Policy, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cache == nil || now.Sub(s.checked) >= s.set.PollEvery || now.Before(s.checked) {
		gen, err := s.st.PolicyGeneration(ctx)
		if err != nil {
			return s.set.Defaults, fmt.Errorf("policy generation: %w", err)
		}
		s.checked = now
		if s.cache == nil || gen != s.gen {
			over, err := s.st.Policies(ctx)
			if err != nil {
				return s.set.Defaults, fmt.Errorf("policies: %w", err)
			}
			s.gen, s.over, s.cache = gen, over, map[string]Policy{}
		}
	}
	if p, ok := s.cache[account]; ok {
		return p, nil
	}
	if len(s.over) == 0 {
		return s.set.Defaults, nil
	}
	groups, err := s.st.AccountGroups(ctx, account)
	if err != nil {
		return s.set.Defaults, fmt.Errorf("groups of %s: %w", account, err)
	}
	p, _ := resolve(s.set.Defaults, s.over, true, account, groups)
	// Bounded by the accounts that send or receive between two changes;
	// dropped whole at the next change.
	if len(s.cache) < 1<<16 {
		s.cache[account] = p
	}
	return p, nil
}
