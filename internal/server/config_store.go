package server

import (
	"bytes"
	"fmt"

	"github.com/phonex/phonex/internal/store/storeopen"
)

// StoreSpec names the node's store for storeopen: the setting, or the
// SQLite database in the data directory.
func (c Config) StoreSpec() string {
	if c.Store == "" {
		return c.DataDir
	}
	return c.Store
}

// StoreName is StoreSpec without a password, for messages.
func (c Config) StoreName() string {
	s, err := storeopen.Parse(c.StoreSpec())
	if err != nil {
		return "(bad store setting)"
	}
	return s.String()
}

func (c Config) validateStore() error {
	if c.Store == "" {
		return nil
	}
	if _, err := storeopen.Parse(c.Store); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func (c Config) encodeStore(b *bytes.Buffer) {
	fmt.Fprintf(b, "# Where the cluster's state lives: empty for the SQLite database in this\n# directory, sqlite:DIR for another one, or postgres://USER@HOST/DB (libpq\n# URL; keep the password in ~/.pgpass or PGPASSWORD rather than here) for\n# PostgreSQL, which several nodes share (docs/storage.md).\nstore = %s\n\n", c.Store)
}
