package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestDispatch runs the command in process, without a node: exit codes and
// where the words go.
func TestDispatch(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "none")
	for _, c := range []struct {
		args      []string
		env       map[string]string
		code      int
		out, errs string
	}{
		{nil, nil, 2, "", "phonex enroll"},
		{[]string{"--version"}, nil, 0, "phonex ", ""},
		{[]string{"help"}, nil, 0, "phonex listen", ""},
		{[]string{"help", "inbox"}, nil, 0, "usage: phonex inbox", ""},
		{[]string{"contacts", "ad", "x@example.org"}, nil, 2, "", `did you mean "contacts add"`},
		{[]string{"inbox", "--read"}, nil, 2, "", "--read needs --with"},
		{[]string{"whoami", "extra"}, nil, 2, "", `unexpected argument "extra"`},
		{[]string{"whoami", "--profile", empty}, nil, 1, "", "no PhoneX profile here"},
		{[]string{"call", "sip:a@127.0.0.1:5060", "--direct", "--zrtp-prefer", "TOOLONG"}, nil, 1, "", "unknown ZRTP algorithm"},
		{[]string{"presence", "set", "sleepy"}, nil, 2, "", "presence set takes one state"},
		{[]string{"presence", "sett"}, nil, 2, "", `did you mean "presence set"`},
		{[]string{"presence", "--note", "x"}, nil, 2, "", "--note goes with presence set"},
		{[]string{"help", "presence"}, nil, 0, "usage: phonex presence", ""},
	} {
		var out, errs bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errs, getenv: func(k string) string { return c.env[k] }}
		code := a.run(context.Background(), c.args)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errs.String(), c.errs) {
			t.Errorf("phonex %v: exit %d\nstdout: %s\nstderr: %s", c.args, code, out.String(), errs.String())
		}
		if n := strings.Count(errs.String(), "phonex: "); n > 1 {
			t.Errorf("phonex %v: %d errors printed:\n%s", c.args, n, errs.String())
		}
	}
}
