package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// AdminConfig is the admin panel's section of the configuration.
type AdminConfig struct {
	Addr        string        // HTTPS listener of the panel; "" off
	IdleTimeout time.Duration // a session unused this long ends
	MaxAge      time.Duration // a session ends this long after sign-in
	FreshFor    time.Duration // destructive actions need a sign-in this recent
	LockAfter   int           // failed sign-ins of one administrator before a lock-out
	LockFor     time.Duration // and its length
}

func adminDefaults() AdminConfig {
	return AdminConfig{IdleTimeout: 15 * time.Minute, MaxAge: 8 * time.Hour, FreshFor: 5 * time.Minute, LockAfter: 5, LockFor: 15 * time.Minute}
}

func (a AdminConfig) validate() error {
	var errs []error
	if a.Addr != "" {
		if _, _, err := net.SplitHostPort(a.Addr); err != nil {
			errs = append(errs, fmt.Errorf("admin_addr %q: %w", a.Addr, err))
		}
	}
	if a.IdleTimeout < time.Minute || a.MaxAge < a.IdleTimeout || a.FreshFor < 30*time.Second || a.LockAfter < 1 || a.LockFor < time.Second {
		errs = append(errs, errors.New("admin settings: admin_idle_timeout >= 1m, admin_max_age >= it, admin_fresh >= 30s, admin_lock_after >= 1, admin_lock_for >= 1s"))
	}
	return errors.Join(errs...)
}

func (a AdminConfig) encode(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n# Admin web panel (docs/admin-panel.md): HTTPS with the server certificate on\n# admin_addr (empty: off; keep it on loopback or a management network).\n# Sessions end after admin_idle_timeout unused and admin_max_age after sign-in;\n# destructive actions need a sign-in within admin_fresh. admin_lock_after failed\n# sign-ins lock an administrator out for admin_lock_for.\n")
	fmt.Fprintf(b, "admin_addr = %s\nadmin_idle_timeout = %s\nadmin_max_age = %s\nadmin_fresh = %s\nadmin_lock_after = %d\nadmin_lock_for = %s\n",
		a.Addr, a.IdleTimeout, a.MaxAge, a.FreshFor, a.LockAfter, a.LockFor)
}

// parse sets one admin_ setting; ok is false for a key that is not one.
func (a *AdminConfig) parse(k, v string) (ok bool, err error) {
	switch k {
	case "admin_addr":
		a.Addr = v
	case "admin_idle_timeout":
		a.IdleTimeout, err = time.ParseDuration(v)
	case "admin_max_age":
		a.MaxAge, err = time.ParseDuration(v)
	case "admin_fresh":
		a.FreshFor, err = time.ParseDuration(v)
	case "admin_lock_after":
		a.LockAfter, err = strconv.Atoi(v)
	case "admin_lock_for":
		a.LockFor, err = time.ParseDuration(v)
	default:
		return false, nil
	}
	return true, err
}
