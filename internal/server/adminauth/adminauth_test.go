package adminauth

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
	"github.com/phonex/phonex/internal/totp"
)

func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse battery")
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %s", h)
	}
	if h == HashPassword("correct horse battery") {
		t.Fatal("no salt")
	}
	for _, c := range []struct {
		hash, pw string
		ok       bool
		err      bool
	}{
		{h, "correct horse battery", true, false},
		{h, "correct horse batterY", false, false},
		{"$argon2i$v=19$m=8,t=1,p=1$AAAA$AAAA", "x", false, true},
		{"$argon2id$v=18$m=8,t=1,p=1$AAAA$AAAA", "x", false, true},
		{"$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "x", false, true},
		{"$argon2id$v=19$m=8,t=1,p=1$!!$AAAA", "x", false, true},
		{"garbage", "x", false, true},
	} {
		ok, err := CheckPassword(c.hash, c.pw)
		if ok != c.ok || (err != nil) != c.err {
			t.Errorf("%s %q: %v %v", c.hash, c.pw, ok, err)
		}
	}
}

func TestAddCheckReset(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Unix(1_800_000_000, 0)
	s := NewService(st, "example.org")
	s.Now = func() time.Time { return now }
	for _, c := range []struct {
		name, pw string
		err      error
	}{
		{"root", "short", ErrWeakPassword},
		{"bad name", "long enough password", ErrBadName},
		{"", "long enough password", ErrBadName},
		{"root", "long enough password", nil},
		{"root", "long enough password", store.ErrExists},
	} {
		if _, err := s.Add(ctx, c.name, c.pw); !errors.Is(err, c.err) {
			t.Errorf("add %q: %v, want %v", c.name, err, c.err)
		}
	}
	a, _ := st.AdminAccount(ctx, "root")
	if err := s.Check(ctx, "root", "long enough password", totp.Code(a.TOTPSecret, now)); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx, "root", "long enough password", totp.Code(a.TOTPSecret, now)); !errors.Is(err, ErrSignIn) || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replayed code: %v", err)
	}
	e, err := s.Reset(ctx, "root", "another long password")
	if err != nil || !strings.HasPrefix(e.URI, "otpauth://totp/") {
		t.Fatal(err)
	}
	a, _ = st.AdminAccount(ctx, "root")
	now = now.Add(time.Minute)
	if err := s.Check(ctx, "root", "another long password", totp.Code(a.TOTPSecret, now)); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	if l, _ := s.List(ctx); len(l) != 1 || l[0].Admin != "root" {
		t.Fatalf("list: %+v", l)
	}
	if err := s.Remove(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "root"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}
