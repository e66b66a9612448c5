package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/phonex/phonex/sdk"
)

// isTerminal reports whether f is a terminal; anything but an *os.File
// (a test's buffer) is not.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

func logger(getenv func(string) string, w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if getenv("PHONEX_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// password takes the password from --password-file, PHONEX_PASSWORD or a
// prompt, in that order. confirm asks twice on a terminal.
func (a *app) password(file, label string, confirm bool) ([]byte, error) {
	if file != "" {
		return readPasswordFile(file)
	}
	if v := a.getenv("PHONEX_PASSWORD"); v != "" {
		return []byte(v), nil
	}
	return a.prompt(label, confirm, "PHONEX_PASSWORD", "--password-file")
}

func readPasswordFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return nil, fmt.Errorf("password file %s: %w", path, sdk.ErrNoPassword)
	}
	return line, nil
}

// prompt reads a password from the terminal, or one line of a piped
// standard input. env and flag name where else it may come from.
func (a *app) prompt(label string, confirm bool, env, flag string) ([]byte, error) {
	if !isTerminal(a.stdin) {
		// Scripts may pipe the password on standard input.
		// One reader for the run, so that a second prompt (passwd's new
		// password) gets the next line and not what the first buffered.
		if a.in == nil {
			a.in = bufio.NewReader(a.stdin)
		}
		line, _ := a.in.ReadBytes('\n')
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return nil, fmt.Errorf("%w: set %s, use %s, or run on a terminal", sdk.ErrNoPassword, env, flag)
		}
		return line, nil
	}
	fd := int(a.stdin.(*os.File).Fd())
	fmt.Fprint(a.stderr, label)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(a.stderr, "Again: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("the passwords differ")
		}
	}
	return pw, nil
}
