package storeopen

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/testpg"
)

func TestMain(m *testing.M) { testpg.Main(m) }

func TestParse(t *testing.T) {
	for _, c := range []struct {
		spec, kind, where string
		err               error
	}{
		{"data", SQLite, filepath.Join("data", SQLiteFile), nil},
		{"/var/lib/phonexd", SQLite, "/var/lib/phonexd/" + SQLiteFile, nil},
		{"sqlite:/srv/x", SQLite, "/srv/x/" + SQLiteFile, nil},
		{"postgres://u@db.example.org/phonex", Postgres, "postgres://u@db.example.org/phonex", nil},
		{"postgresql://u@10.0.0.5:5433/phonex?sslmode=verify-full", Postgres, "postgresql://u@10.0.0.5:5433/phonex?sslmode=verify-full", nil},
		{"postgres:///phonex?host=/run/postgresql", Postgres, "postgres:///phonex?host=/run/postgresql", nil},
		{"postgres:///phonex", "", "", ErrBadSpec},
		{"sqlite:", "", "", ErrBadSpec},
		{"", "", "", ErrBadSpec},
		{"mysql://x/y", "", "", ErrBadSpec},
	} {
		s, err := Parse(c.spec)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%q: %v, want %v", c.spec, err, c.err)
			}
			continue
		}
		if err != nil || s.Kind != c.kind || s.Path+s.DSN != c.where {
			t.Errorf("%q: %+v %v", c.spec, s, err)
		}
	}
}

// A password never shows in the name of a store.
func TestStringHidesPassword(t *testing.T) {
	for _, spec := range []string{"postgres://phonex:s3cret@db/phonex", "postgres://db/phonex?password=s3cret&sslmode=require"} {
		s, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s.String(), "s3cret") {
			t.Errorf("%s shows the password", s)
		}
	}
}

// Both kinds open to a working, migrated store.
func TestOpenBoth(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"sqlite:" + t.TempDir(), testpg.DSN(t)} {
		st, err := Open(ctx, spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		if _, err := st.CreateAccount(ctx, "a@x.org", time.Now()); err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		st.Close()
	}
}

// Any string either names a store or gets ErrBadSpec, and the printed name
// never carries the password of a URL.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"data", "sqlite:/x", "postgres://u:pw@h/db", "postgresql://h/db?password=pw", "postgres://%zz", "mysql://a", "", "postgres:///db?host=/tmp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		s, err := Parse(spec)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("%q: %v", spec, err)
			}
			return
		}
		name := s.String()
		if s.Kind == Postgres && strings.Contains(spec, ":pw@") && strings.Contains(name, ":pw@") {
			t.Fatalf("%q printed as %q", spec, name)
		}
	})
}

// A SQLite store named in a directory that does not exist yet is made
// there, readable by its owner only.
func TestOpenMakesSQLiteDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	st, err := Open(context.Background(), "sqlite:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	fi, err := os.Stat(filepath.Join(dir, SQLiteFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database %v %v", fi, err)
	}
}
