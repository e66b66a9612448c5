// Package testpeer finds the third-party peers that interop tests run
// against (SIPp, stunnel, linphonec, Kamailio, libopus). A test that
// needs one calls Require: on a developer machine a missing peer skips the
// test with the reason; in CI (the CI environment variable is set) it fails
// the test, because CI installs every peer and a skip there would hide a
// test that proves nothing.
//
// Skip messages start with SkipPrefix so that the test script can list the
// peers it skipped.
package testpeer

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SkipPrefix starts the message of every test skipped for a missing peer.
const SkipPrefix = "peer missing:"

// ErrNotFound is returned by Find when a peer is not installed.
var ErrNotFound = errors.New("not installed")

// A Peer is something outside Go a test needs: a program on PATH or a
// shared library the dynamic loader finds.
type Peer struct {
	Name     string   // what tests ask for, e.g. "sipp"
	Programs []string // executables to look for, in order of preference
	Library  string   // or a shared library's soname, e.g. "libopus.so.0"
	Package  string   // the Debian package that provides it
}

// Known lists the peers the tests use, with the Debian package .ci/run
// installs for each.
var Known = map[string]Peer{
	"sipp":              {Name: "sipp", Programs: []string{"sipp"}, Package: "sip-tester"},
	"stunnel":           {Name: "stunnel", Programs: []string{"stunnel4", "stunnel"}, Package: "stunnel4"},
	"linphonec":         {Name: "linphonec", Programs: []string{"linphonec"}, Package: "linphone-cli"},
	"kamailio":          {Name: "kamailio", Programs: []string{"kamailio"}, Package: "kamailio"},
	"libopus":           {Name: "libopus", Library: "libopus.so.0", Package: "libopus0"},
	"opusinfo":          {Name: "opusinfo", Programs: []string{"opusinfo"}, Package: "opus-tools"},
	"opusdec":           {Name: "opusdec", Programs: []string{"opusdec"}, Package: "opus-tools"},
	"turnserver":        {Name: "turnserver", Programs: []string{"turnserver"}, Package: "coturn"},
	"turnutils_uclient": {Name: "turnutils_uclient", Programs: []string{"turnutils_uclient"}, Package: "coturn"},
	"chromium":          {Name: "chromium", Programs: []string{"chromium", "chromium-browser"}, Package: "chromium"},
}

// InCI reports whether the CI environment variable asks for every peer to
// be present: set, and not "", "0" or "false".
func InCI() bool {
	v, ok := os.LookupEnv("CI")
	if !ok {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no":
		return false
	}
	return true
}

// Require returns the path of the peer called name (an executable, or the
// shared library for a Library peer). When it is missing, Require skips the
// test, or fails it in CI. Names not in Known are looked up as executables
// of that name.
func Require(t testing.TB, name string) string {
	t.Helper()
	p, ok := Known[name]
	if !ok {
		p = Peer{Name: name, Programs: []string{name}}
	}
	path, err := Find(p)
	if err != nil {
		Missing(t, name, err.Error())
	}
	return path
}

// Missing reports that the test cannot run because peer is unavailable:
// t.Skip with the reason, or t.Fatal in CI. Tests whose check is not a
// lookup (a library that loads but fails to initialise) call it directly.
func Missing(t testing.TB, peer, reason string) {
	t.Helper()
	msg := SkipPrefix + " " + peer + ": " + reason
	if p, ok := Known[peer]; ok && p.Package != "" && !strings.Contains(reason, p.Package) {
		msg += " (Debian package " + p.Package + "; .ci/run installs it)"
	}
	if InCI() {
		t.Fatal(msg + "; CI is set, so a missing peer is a failure")
	} else {
		t.Skip(msg)
	}
}

// Find looks p up without a test: the first of its programs on PATH, or
// its library in the dynamic loader's directories.
func Find(p Peer) (string, error) {
	if p.Library != "" {
		return findLibrary(p.Library)
	}
	for _, prog := range p.Programs {
		if path, err := exec.LookPath(prog); err == nil {
			return path, nil
		}
		// Debian puts daemons such as kamailio in sbin, which is not on
		// an ordinary user's PATH.
		for _, dir := range sbinDirs {
			if path, err := exec.LookPath(filepath.Join(dir, prog)); err == nil {
				return path, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no %s on PATH or in %s", ErrNotFound, strings.Join(p.Programs, " or "), strings.Join(sbinDirs, ", "))
}

// sbinDirs are searched for programs not on PATH.
var sbinDirs = []string{"/usr/local/sbin", "/usr/sbin", "/sbin"}

// libDirs are the directories the glibc loader searches by default on
// Debian and most other distributions, after LD_LIBRARY_PATH.
var libDirs = []string{
	"/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib",
	"/lib/*-linux-gnu*", "/usr/lib/*-linux-gnu*", "/usr/local/lib/*-linux-gnu*",
}

// findLibrary finds a shared library by soname the way the loader would
// without reading ld.so.cache: LD_LIBRARY_PATH, then the default
// directories, then the multiarch ones.
func findLibrary(soname string) (string, error) {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv("LD_LIBRARY_PATH")) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs, libDirs...)
	for _, pattern := range dirs {
		matches, _ := filepath.Glob(filepath.Join(pattern, soname))
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && !st.IsDir() {
				return m, nil
			}
		}
	}
	return "", fmt.Errorf("%w: no %s in LD_LIBRARY_PATH or the loader's default directories", ErrNotFound, soname)
}
