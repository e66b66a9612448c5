package testpeer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for a test so that Missing's skip or failure can be
// observed without ending the real test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()           {}
func (r *recorder) Skip(args ...any)  { r.skipped = args[0].(string) }
func (r *recorder) Fatal(args ...any) { r.failed = args[0].(string) }

func TestInCI(t *testing.T) {
	for _, tc := range []struct {
		val  string
		set  bool
		want bool
	}{
		{set: false, want: false},
		{val: "", set: true, want: false},
		{val: "false", set: true, want: false},
		{val: "0", set: true, want: false},
		{val: "true", set: true, want: true},
		{val: "1", set: true, want: true},
		{val: "yes", set: true, want: true},
	} {
		if tc.set {
			t.Setenv("CI", tc.val)
		} else {
			t.Setenv("CI", "")
			os.Unsetenv("CI")
		}
		if got := InCI(); got != tc.want {
			t.Errorf("CI=%q (set %v): InCI() = %v, want %v", tc.val, tc.set, got, tc.want)
		}
	}
}

func TestRequireMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	defer func(d []string) { sbinDirs = d }(sbinDirs)
	sbinDirs = []string{t.TempDir()}
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		r := &recorder{TB: t}
		if path := Require(r, "sipp"); path != "" {
			t.Errorf("CI=%q: Require returned %q for a missing peer", ci, path)
		}
		msg := r.skipped
		if ci != "" {
			msg = r.failed
			if r.skipped != "" {
				t.Errorf("CI=%q: skipped (%q) instead of failing", ci, r.skipped)
			}
		} else if r.failed != "" {
			t.Errorf("CI unset: failed (%q) instead of skipping", r.failed)
		}
		if !strings.HasPrefix(msg, SkipPrefix+" sipp: ") || !strings.Contains(msg, "sip-tester") {
			t.Errorf("CI=%q: message %q lacks the prefix, peer or package", ci, msg)
		}
	}
}

func TestRequireFound(t *testing.T) {
	dir := t.TempDir()
	// stunnel is found under its second name when the first is absent.
	prog := filepath.Join(dir, "stunnel")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	t.Setenv("CI", "true")
	r := &recorder{TB: t}
	if got := Require(r, "stunnel"); got != prog || r.failed != "" || r.skipped != "" {
		t.Errorf("Require(stunnel) = %q (failed %q, skipped %q), want %q", got, r.failed, r.skipped, prog)
	}
}

func TestFindInSbin(t *testing.T) {
	sbin := t.TempDir()
	prog := filepath.Join(sbin, "kamailio")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer func(d []string) { sbinDirs = d }(sbinDirs)
	sbinDirs = []string{t.TempDir(), sbin}
	t.Setenv("PATH", t.TempDir())
	if got, err := Find(Known["kamailio"]); err != nil || got != prog {
		t.Errorf("Find(kamailio) = %q, %v; want %q", got, err, prog)
	}
}

func TestFindLibrary(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "libphonexpeer.so.7")
	if err := os.WriteFile(lib, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LD_LIBRARY_PATH", dir)
	if got, err := Find(Peer{Name: "x", Library: "libphonexpeer.so.7"}); err != nil || got != lib {
		t.Errorf("Find = %q, %v; want %q", got, err, lib)
	}
	if _, err := Find(Peer{Name: "y", Library: "libphonexnone.so.1"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Find of an absent library: %v, want ErrNotFound", err)
	}
}
