package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/storeopen"
)

// ErrStoreInUse refuses to initialise a new cluster (a new CA and sealing
// key) on a store that holds another cluster's accounts: their secrets
// would not open and their certificates would not verify.
var ErrStoreInUse = errors.New("the store already holds a cluster's accounts (to add a node to that cluster, use init --join DIR of one of its nodes)")

// checkFreshStore returns ErrStoreInUse when st holds accounts.
func checkFreshStore(ctx context.Context, st store.Store) error {
	as, err := st.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if len(as) > 0 {
		return fmt.Errorf("init: %w", ErrStoreInUse)
	}
	return nil
}

// ErrJoinNeedsSharedStore refuses to join a node to a cluster whose store
// is its own SQLite file: the nodes would each hold a different state.
var ErrJoinNeedsSharedStore = errors.New("joining needs a shared store (postgres://…)")

// Join creates cfg.DataDir for another node of the cluster that the data
// directory from belongs to. Every node must hold the same CA (it issues
// and checks the device certificates) and sealing key (it opens the
// account and device secrets the shared store holds sealed), and the same
// relay secret (the relay credentials one node hands out work on all), so
// those are copied; the node gets a server certificate of its own for
// cfg.Hosts from that CA. The domain and, unless cfg names one, the store
// come from from's configuration; the store must be PostgreSQL.
func Join(ctx context.Context, cfg Config, from string) (*ca.CA, error) {
	src, err := LoadConfig(from)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	cfg.Domain = src.Domain
	if cfg.Store == "" {
		cfg.Store = src.Store
	}
	if cfg.Cluster.Bus == "" {
		cfg.Cluster.Bus = src.Cluster.Bus // the same bus; the node id stays its own
	}
	if s, err := storeopen.Parse(cfg.StoreSpec()); err != nil || s.Kind != storeopen.Postgres {
		return nil, fmt.Errorf("join: %w", ErrJoinNeedsSharedStore)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, ConfigFile)); err == nil {
		return nil, fmt.Errorf("join: %s already holds a configuration", cfg.DataDir)
	}
	copies := [][2]string{
		{filepath.Join(from, ca.CACertFile), filepath.Join(cfg.DataDir, ca.CACertFile)},
		{filepath.Join(from, ca.CAKeyFile), filepath.Join(cfg.DataDir, ca.CAKeyFile)},
		{filepath.Join(from, SealKeyFile), filepath.Join(cfg.DataDir, SealKeyFile)},
	}
	if _, err := os.Stat(RelaySecretPath(src)); err == nil {
		copies = append(copies, [2]string{RelaySecretPath(src), RelaySecretPath(cfg)})
	}
	// Every node serving the directory zone signs with the same keys, so
	// answers from any of them validate against the one DS record.
	for _, f := range [][2]string{{src.DNS.KSKFile, cfg.DNS.KSKFile}, {src.DNS.ZSKFile, cfg.DNS.ZSKFile}} {
		fromDir, fromBase := keyPath(src, f[0])
		toDir, toBase := keyPath(cfg, f[1])
		for _, ext := range []string{".key", ".private"} {
			if _, err := os.Stat(filepath.Join(fromDir, fromBase+ext)); err == nil {
				copies = append(copies, [2]string{filepath.Join(fromDir, fromBase+ext), filepath.Join(toDir, toBase+ext)})
			}
		}
	}
	for _, c := range copies {
		if err := copyFile(c[0], c[1]); err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
	}
	c, err := ca.Load(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	if err := c.IssueServer(cfg.DataDir, cfg.Domain, cfg.Hosts, time.Now()); err != nil {
		return nil, fmt.Errorf("join: server certificate: %w", err)
	}
	if _, err := loadSealer(cfg.DataDir, false); err != nil {
		return nil, err
	}
	st, err := storeopen.Open(ctx, cfg.StoreSpec())
	if err != nil {
		return nil, err
	}
	st.Close()
	if err := os.WriteFile(filepath.Join(cfg.DataDir, ConfigFile), cfg.Encode(), 0o600); err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	return c, nil
}

// copyFile copies a secret: readable by the owner only, never over an
// existing file.
func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
