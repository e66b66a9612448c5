// Package cli holds what both commands share: flag sets with their own
// usage and help, flag parsing that accepts flags after arguments, error
// reporting with exit codes, suggestions for mistyped commands, and output
// as text or JSON.
package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1 // the operation failed
	ExitUsage = 2 // the command line is wrong
)

// ErrMissingFlag is wrapped by Flags.Require when a required flag is absent.
var ErrMissingFlag = errors.New("missing required flag")

// UsageError is a wrong command line: what is wrong, and the usage of the
// command it was meant for.
type UsageError struct {
	Problem string
	Usage   string
	Err     error
	// Overview: Usage is a whole overview, printed as it is rather than
	// after "usage: ".
	Overview bool
}

func (u *UsageError) Error() string {
	if u.Problem == "" {
		return "usage: " + u.Usage
	}
	return u.Problem
}

func (u *UsageError) Unwrap() error { return u.Err }

// Usage is an error for a wrong command line without a more specific problem.
func Usage(usage string) error { return &UsageError{Usage: usage} }

// Overview is the error for a command line without a command: the overview
// of every command, printed on standard error.
func Overview(text string) error { return &UsageError{Usage: text, Overview: true} }

// Misuse is an error for a wrong command line: problem says what is wrong.
func Misuse(usage, format string, a ...any) error {
	return &UsageError{Problem: fmt.Sprintf(format, a...), Usage: usage}
}

// Help is returned by Parse when the command line asks for help; its text
// goes to standard output and the command exits 0.
type Help string

func (h Help) Error() string { return string(h) }

// Flags is a flag set that knows its command's usage.
type Flags struct {
	*flag.FlagSet
	usage string
}

// NewFlags makes the flag set of one command; usage is its synopsis. The
// flag package prints nothing itself, so every error is printed once, by
// Exit.
func NewFlags(name, usage string) *Flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &Flags{FlagSet: fs, usage: usage}
}

// Usage is the command's synopsis.
func (f *Flags) Usage() string { return f.usage }

// HelpText is the synopsis and every flag with its default.
func (f *Flags) HelpText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n", f.usage)
	n := 0
	f.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		b.WriteString("\nOptions:\n")
		f.SetOutput(&b)
		f.PrintDefaults()
		f.SetOutput(io.Discard)
	}
	return b.String()
}

// Parse parses args, allowing flags and positional arguments in any order,
// and returns the positional ones. -h/--help gives a Help error, a bad flag
// a UsageError.
func (f *Flags) Parse(args []string) ([]string, error) {
	pos, err := Parse(f.FlagSet, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, Help(f.HelpText())
	}
	if err != nil {
		return nil, &UsageError{Problem: err.Error() + f.suggestFlag(err), Usage: f.usage, Err: err}
	}
	return pos, nil
}

// Parse parses args with fs, allowing flags and positional arguments in any
// order, and returns the positional ones.
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// suggestFlag names the defined flag nearest to an undefined one.
func (f *Flags) suggestFlag(err error) string {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return ""
	}
	var names []string
	f.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
	if s := Suggest(strings.TrimLeft(name, "-"), names); s != "" {
		return fmt.Sprintf(" (did you mean --%s?)", s)
	}
	return ""
}

// IsSet reports whether the flag name was given on the command line.
func (f *Flags) IsSet(name string) bool {
	set := false
	f.Visit(func(fl *flag.Flag) { set = set || fl.Name == name })
	return set
}

// Require returns a UsageError naming the first of names that was not
// given on the command line.
func (f *Flags) Require(names ...string) error {
	set := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	for _, n := range names {
		if !set[n] {
			return &UsageError{Problem: fmt.Sprintf("%v --%s", ErrMissingFlag, n), Usage: f.usage, Err: ErrMissingFlag}
		}
	}
	return nil
}

// Exit prints err once and returns the exit code: 0 for nil and for Help
// (printed to stdout), 2 for a UsageError (with the usage), 1 otherwise.
func Exit(prog string, err error, stdout, stderr io.Writer) int {
	var h Help
	var u *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &h):
		fmt.Fprint(stdout, string(h))
		return ExitOK
	case errors.As(err, &u):
		if u.Problem != "" {
			fmt.Fprintf(stderr, "%s: %s\n", prog, u.Problem)
		}
		switch {
		case u.Overview:
			fmt.Fprintln(stderr, u.Usage)
		case u.Usage != "":
			fmt.Fprintf(stderr, "usage: %s\n", u.Usage)
		}
		return ExitUsage
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return ExitError
}

// UnknownCommand is the error for a command name that is not one of names;
// it suggests the nearest. usage, the synopsis of the parent command, may be
// empty.
func UnknownCommand(prog, name string, names []string, usage string) error {
	p := fmt.Sprintf("unknown command %q", name)
	if s := Suggest(name, names); s != "" {
		p += fmt.Sprintf(" (did you mean %q?)", s)
	}
	p += fmt.Sprintf("; run '%s --help' for the list", prog)
	return &UsageError{Problem: p, Usage: usage}
}

// Suggest returns the name in names nearest to s by edit distance, or ""
// when none is near enough to be a plausible typo.
func Suggest(s string, names []string) string {
	best, bestD := "", 0
	for _, n := range names {
		d := distance(strings.ToLower(s), n)
		if strings.HasPrefix(n, strings.ToLower(s)) && len(s) >= 2 {
			d = 1
		}
		if best == "" || d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > max(2, len(best)/3) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Plural renders a count with its noun: "1 device", "2 devices".
func Plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// Version is set at link time (-ldflags "-X github.com/phonex/phonex/internal/cli.Version=v1.2.3");
// otherwise the module version or the VCS revision of the build is used.
var Version = ""

// VersionLine is what --version prints: the program, its version and the Go
// release it was built with.
func VersionLine(prog string) string {
	v, goVersion := Version, ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		if v == "" {
			rev, dirty := "", false
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if rev != "" {
				v = "devel-" + rev
				if dirty {
					v += "-dirty"
				}
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	line := prog + " " + v
	if goVersion != "" {
		line += " (" + goVersion + ")"
	}
	return line
}

// JSON writes v as one line of JSON.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
