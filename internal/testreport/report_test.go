package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A module whose tests pass, fail, panic in a subtest, skip for a missing
// peer and skip for another reason; the report is built from the real
// `go test -json` stream of it.
var sample = map[string]string{
	"go.mod": "module example.test/sample\n\ngo 1.22\n",
	"a/a_test.go": `package a

import "testing"

func TestPass(t *testing.T) { t.Log("fine") }
func TestFail(t *testing.T) { t.Error("the answer was 41") }
func TestPeer(t *testing.T) {
	t.Log("looking")
	t.Skip("peer missing: sipp: not installed: no sipp on PATH (Debian package sip-tester)")
}
func TestSub(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("short", func(t *testing.T) { t.Skip("slow; not in -short") })
}
`,
	"b/b_test.go": `package b

import "testing"

func TestOnly(t *testing.T) {}
`,
	"c/c.go": "package c\n",
	"p/p_test.go": `package p

import "testing"

func TestPanics(t *testing.T) {
	var m map[string]int
	m["boom"]++
}
`,
}

func TestReportFromGoTest(t *testing.T) {
	dir := t.TempDir()
	for name, body := range sample {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-count=1", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	stream, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("go test on the sample: %v (want exit status 1)\n%s", err, stream)
	}

	var out bytes.Buffer
	r := newReport(&out)
	if err := r.read(bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if r.summary() {
		t.Error("summary reports success for a run with a failed test")
	}
	got := out.String()
	for _, want := range []string{
		"--- FAIL example.test/sample/a TestFail",
		"the answer was 41",
		"FAIL  example.test/sample/a",
		"ok    example.test/sample/b",
		"Skipped, third-party peer missing",
		"  example.test/sample/a TestPeer: peer missing: sipp: not installed: no sipp on PATH (Debian package sip-tester)\n",
		"Skipped, other reasons:\n  example.test/sample/a TestSub/short: slow; not in -short\n",
		"tests: 4 passed, 2 failed, 2 skipped (1 for missing peers)",
		"FAIL: example.test/sample/a example.test/sample/p",
		"--- FAIL example.test/sample/p TestPanics",
		"panic: assignment to entry in nil map",
		"FAIL  example.test/sample/p",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	for _, unwanted := range []string{"fine", "looking", "=== RUN"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("report shows %q, the output of a passing or skipped test:\n%s", unwanted, got)
		}
	}
}

func TestReportBuildFailure(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":      "module example.test/broken\n\ngo 1.22\n",
		"x/x.go":      "package x\n\nfunc F() int { return \"not an int\" }\n",
		"x/x_test.go": "package x\n\nimport \"testing\"\n\nfunc TestF(t *testing.T) { F() }\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "test", "-count=1", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	stream, _ := cmd.Output()
	var out bytes.Buffer
	r := newReport(&out)
	if err := r.read(bytes.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	if r.summary() {
		t.Errorf("summary reports success for a package that does not build:\n%s", out.String())
	}
	if got := out.String(); !strings.Contains(got, "not an int") || !strings.Contains(got, "FAIL  example.test/broken/x") {
		t.Errorf("report does not show the compiler's error and the failed package:\n%s", got)
	}
}
