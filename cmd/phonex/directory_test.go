package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// The directory commands' command lines, in process without a node.
func TestDirectoryCommandLine(t *testing.T) {
	for _, c := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{[]string{"directory"}, 2, "", "directory needs a command"},
		{[]string{"directory", "--help"}, 0, "phonex directory discover", ""},
		{[]string{"directory", "lokup", "+420777000111"}, 2, "", `did you mean "lookup"`},
		{[]string{"directory", "publish"}, 2, "", "missing required flag --number"},
		{[]string{"directory", "publish", "--number", "+420777000111", "--code", "1", "--no-wait"}, 2, "", "give one of them"},
		{[]string{"directory", "lookup"}, 2, "", "takes one number"},
		{[]string{"directory", "lookup", "+420777000111", "--anchor", "a.ds"}, 2, "", "--anchor goes with --dns"},
		{[]string{"directory", "discover"}, 2, "", "missing required flag --file"},
		{[]string{"directory", "cancel"}, 2, "", "takes the replacement"},
		{[]string{"directory", "notices", "x"}, 2, "", `unexpected argument "x"`},
		{[]string{"directory", "lookup", "--help"}, 0, "usage: phonex directory lookup", ""},
		{[]string{"help"}, 0, "phonex directory publish", ""},
	} {
		var out, errs bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errs, getenv: func(string) string { return "" }}
		code := a.run(context.Background(), c.args)
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errs.String(), c.errs) {
			t.Errorf("phonex %v: exit %d\nstdout: %s\nstderr: %s", c.args, code, out.String(), errs.String())
		}
	}
}
