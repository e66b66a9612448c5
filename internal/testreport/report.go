// Command testreport turns the event stream of `go test -json` into a
// readable result: one line per package, the output of every failed test,
// and a summary of skipped tests that names the third-party peers that were
// missing (messages starting with testpeer.SkipPrefix). scripts/test runs it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/testpeer"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Time        time.Time
	Action      string
	Package     string
	Test        string
	Elapsed     float64
	Output      string
	ImportPath  string // build-output, build-fail
	FailedBuild string // the package whose build failed a test package
}

type key struct{ pkg, test string }

// skip is a skipped test and why.
type skip struct {
	pkg, test, reason string
}

type report struct {
	w      io.Writer
	output map[key]*strings.Builder
	build  map[string]*strings.Builder

	passed, failed, skipped int
	failedPkgs              []string
	skips                   []skip
}

func newReport(w io.Writer) *report {
	return &report{w: w, output: map[key]*strings.Builder{}, build: map[string]*strings.Builder{}}
}

// read consumes the stream. Lines that are not JSON (go's own messages)
// are copied through.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(r.w, "%s\n", line)
			continue
		}
		r.event(e)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read go test -json: %w", err)
	}
	return nil
}

func (r *report) buf(k key) *strings.Builder {
	b := r.output[k]
	if b == nil {
		b = &strings.Builder{}
		r.output[k] = b
	}
	return b
}

func (r *report) event(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		b := r.build[e.ImportPath]
		if b == nil {
			b = &strings.Builder{}
			r.build[e.ImportPath] = b
		}
		b.WriteString(e.Output)
	case "build-fail":
		if b := r.build[e.ImportPath]; b != nil {
			fmt.Fprintf(r.w, "build failed: %s\n%s", e.ImportPath, indent(b.String()))
			delete(r.build, e.ImportPath)
		}
	case "output":
		r.buf(k).WriteString(e.Output)
	case "pass":
		if e.Test != "" {
			r.passed++
		} else {
			fmt.Fprintf(r.w, "ok    %s\t%.1fs\n", e.Package, e.Elapsed)
		}
		delete(r.output, k)
	case "skip":
		if e.Test == "" {
			// A package without tests.
			delete(r.output, k)
			return
		}
		r.skipped++
		r.skips = append(r.skips, skip{pkg: e.Package, test: e.Test, reason: skipReason(r.buf(k).String())})
		delete(r.output, k)
	case "fail":
		if e.Test != "" {
			r.failed++
			fmt.Fprintf(r.w, "--- FAIL %s %s (%.2fs)\n%s", e.Package, e.Test, e.Elapsed, indent(clean(r.buf(k).String())))
			delete(r.output, k)
			return
		}
		// The package: print what no test claimed (a panic, TestMain's
		// errors, a build failure's notice), then the verdict.
		fmt.Fprint(r.w, indent(clean(r.buf(k).String())))
		if e.FailedBuild != "" {
			fmt.Fprintf(r.w, "FAIL  %s\t[build failed: %s]\n", e.Package, e.FailedBuild)
		} else {
			fmt.Fprintf(r.w, "FAIL  %s\t%.1fs\n", e.Package, e.Elapsed)
		}
		r.failedPkgs = append(r.failedPkgs, e.Package)
		delete(r.output, k)
	}
}

// skipReason picks the message a test gave to t.Skip out of its output:
// the lines between "=== RUN" and "--- SKIP", file:line prefix removed.
func skipReason(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- ") {
			continue
		}
		lines = append(lines, t)
	}
	for _, l := range lines {
		if i := strings.Index(l, testpeer.SkipPrefix); i >= 0 {
			return l[i:]
		}
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	// t.Skip's message is the last thing the test printed.
	last := lines[len(lines)-1]
	if _, msg, ok := strings.Cut(last, ": "); ok && strings.Contains(last[:len(last)-len(msg)], ".go:") {
		return msg
	}
	return last
}

// summary prints the totals and the skipped tests, peers first, and
// reports whether every test passed.
func (r *report) summary() bool {
	var peers, others []skip
	for _, s := range r.skips {
		if strings.HasPrefix(s.reason, testpeer.SkipPrefix) {
			peers = append(peers, s)
		} else {
			others = append(others, s)
		}
	}
	fmt.Fprintln(r.w)
	list := func(title string, ss []skip) {
		if len(ss) == 0 {
			return
		}
		sort.Slice(ss, func(i, j int) bool {
			if ss[i].pkg != ss[j].pkg {
				return ss[i].pkg < ss[j].pkg
			}
			return ss[i].test < ss[j].test
		})
		fmt.Fprintf(r.w, "%s:\n", title)
		for _, s := range ss {
			fmt.Fprintf(r.w, "  %s %s: %s\n", s.pkg, s.test, s.reason)
		}
	}
	list("Skipped, third-party peer missing (CI=true makes these failures)", peers)
	list("Skipped, other reasons", others)
	fmt.Fprintf(r.w, "tests: %d passed, %d failed, %d skipped (%d for missing peers)\n", r.passed, r.failed, r.skipped, len(peers))
	ok := r.failed == 0 && len(r.failedPkgs) == 0
	if ok {
		fmt.Fprintln(r.w, "PASS")
	} else {
		fmt.Fprintf(r.w, "FAIL: %s\n", strings.Join(r.failedPkgs, " "))
	}
	return ok
}

// clean drops go test's framing from output (=== RUN, --- FAIL, the
// package's PASS/FAIL/ok lines) and keeps what the tests printed.
func clean(out string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case t == "", t == "PASS", t == "FAIL",
			strings.HasPrefix(t, "=== "),
			strings.HasPrefix(t, "--- FAIL: "), strings.HasPrefix(t, "--- PASS: "), strings.HasPrefix(t, "--- SKIP: "),
			strings.HasPrefix(t, "FAIL\t"), strings.HasPrefix(t, "ok  \t"):
			continue
		}
		b.WriteString(l)
	}
	return b.String()
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ") + "\n"
}
