// Package storeopen opens a store from the one string an operator writes
// (a data directory, sqlite:DIR or a postgres:// URL), so the layers above
// the store never name an implementation or a dialect.
package storeopen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/postgres"
	"github.com/phonex/phonex/internal/store/sqlite"
)

// SQLiteFile is the SQLite database inside a data directory.
const SQLiteFile = "phonexd.db"

// Kinds of store.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ErrBadSpec is returned for a spec that names no store.
var ErrBadSpec = errors.New("bad store")

// Spec is a parsed store specification.
type Spec struct {
	Kind string // SQLite or Postgres
	Path string // the database file (SQLite)
	DSN  string // the connection string (PostgreSQL)
}

// Parse reads spec: "postgres://…" or "postgresql://…" (a libpq URL), or
// "sqlite:DIR", or a bare DIR, meaning the SQLite database in that data
// directory.
func Parse(spec string) (Spec, error) {
	s := strings.TrimSpace(spec)
	switch {
	case s == "":
		return Spec{}, fmt.Errorf("%w: empty", ErrBadSpec)
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		u, err := url.Parse(s)
		if err != nil {
			// url's error quotes the input, which may hold a password.
			return Spec{}, fmt.Errorf("%w: postgres URL does not parse", ErrBadSpec)
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return Spec{}, fmt.Errorf("%w: postgres URL names no host", ErrBadSpec)
		}
		return Spec{Kind: Postgres, DSN: s}, nil
	case strings.HasPrefix(s, "sqlite:"):
		dir := strings.TrimPrefix(s, "sqlite:")
		if dir == "" {
			return Spec{}, fmt.Errorf("%w: sqlite: names no directory", ErrBadSpec)
		}
		return Spec{Kind: SQLite, Path: filepath.Join(dir, SQLiteFile)}, nil
	case strings.Contains(s, "://"):
		return Spec{}, fmt.Errorf("%w: unknown scheme in %q (use postgres://, sqlite:DIR or a directory)", ErrBadSpec, strings.SplitN(s, "://", 2)[0])
	}
	return Spec{Kind: SQLite, Path: filepath.Join(s, SQLiteFile)}, nil
}

// String names the store for messages and logs, without a password.
func (s Spec) String() string {
	if s.Kind == SQLite {
		return "sqlite:" + filepath.Dir(s.Path)
	}
	u, err := url.Parse(s.DSN)
	if err != nil {
		return "postgres://(unparsable)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Open opens (creating if needed) the store spec names and applies its
// pending migrations.
func Open(ctx context.Context, spec string) (store.Store, error) {
	s, err := Parse(spec)
	if err != nil {
		return nil, err
	}
	return s.Open(ctx)
}

// Open opens the store.
func (s Spec) Open(ctx context.Context) (store.Store, error) {
	switch s.Kind {
	case SQLite:
		// A new database (a copy's target) is made with its directory,
		// readable by the owner only: it holds the sealed secrets.
		if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
			return nil, err
		}
		_, statErr := os.Stat(s.Path)
		db, err := sqlite.Open(ctx, s.Path)
		if err != nil {
			return nil, err
		}
		if errors.Is(statErr, os.ErrNotExist) {
			os.Chmod(s.Path, 0o600)
		}
		return db, nil
	case Postgres:
		db, err := postgres.Open(ctx, s.DSN)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		return db, nil
	}
	return nil, fmt.Errorf("%w: kind %q", ErrBadSpec, s.Kind)
}
