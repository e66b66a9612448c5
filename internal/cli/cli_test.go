package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestSuggest(t *testing.T) {
	names := []string{"enroll", "login", "whoami", "contacts", "devices", "passwd", "send", "listen", "inbox", "read", "resend", "call", "answer"}
	for _, c := range []struct{ in, want string }{
		{"sned", "send"},
		{"contact", "contacts"},
		{"devcies", "devices"},
		{"lisen", "listen"},
		{"who", "whoami"},
		{"READ", "read"},
		{"zzzzzzzz", ""},
		{"x", ""},
	} {
		if got := Suggest(c.in, names); got != c.want {
			t.Errorf("Suggest(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPlural(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0 devices"}, {1, "1 device"}, {2, "2 devices"}} {
		if got := Plural(c.n, "device", "devices"); got != c.want {
			t.Errorf("Plural(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

func TestFlags(t *testing.T) {
	f := NewFlags("enroll", "phonex enroll USER --server HOST:PORT")
	f.String("server", "", "API")
	f.String("code", "", "code")
	pos, err := f.Parse([]string{"a@example.org", "--code", "C"})
	if err != nil || len(pos) != 1 {
		t.Fatalf("Parse: %v %v", pos, err)
	}
	err = f.Require("code", "server")
	if !errors.Is(err, ErrMissingFlag) || !strings.Contains(err.Error(), "--server") {
		t.Fatalf("Require: %v", err)
	}

	var out, errOut bytes.Buffer
	if code := Exit("phonex", err, &out, &errOut); code != ExitUsage || strings.Count(errOut.String(), "--server") != 2 || out.Len() != 0 {
		t.Errorf("Exit: %d %q %q", code, out.String(), errOut.String())
	}

	_, err = NewFlags("x", "phonex x").Parse([]string{"--help"})
	out.Reset()
	errOut.Reset()
	if code := Exit("phonex", err, &out, &errOut); code != ExitOK || !strings.HasPrefix(out.String(), "usage: phonex x") || errOut.Len() != 0 {
		t.Errorf("help: %d %q %q", code, out.String(), errOut.String())
	}

	_, err = NewFlags("x", "phonex x").Parse([]string{"--nope"})
	out.Reset()
	errOut.Reset()
	if code := Exit("phonex", err, &out, &errOut); code != ExitUsage || strings.Count(errOut.String(), "-nope") != 1 {
		t.Errorf("bad flag: %d %q", code, errOut.String())
	}

	g := NewFlags("x", "phonex x")
	g.String("server", "", "")
	if _, err := g.Parse([]string{"--sever", "h"}); err == nil || !strings.Contains(err.Error(), "did you mean --server?") {
		t.Errorf("mistyped flag: %v", err)
	}
}

func TestVersionLine(t *testing.T) {
	if l := VersionLine("phonex"); !strings.HasPrefix(l, "phonex ") {
		t.Errorf("VersionLine = %q", l)
	}
	Version = "v9.9.9"
	defer func() { Version = "" }()
	if l := VersionLine("phonexd"); !strings.HasPrefix(l, "phonexd v9.9.9") {
		t.Errorf("VersionLine with Version set = %q", l)
	}
}
