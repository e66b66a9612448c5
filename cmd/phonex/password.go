package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/term"

	"github.com/phonex/phonex/internal/client"
)

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

func logger() *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PHONEX_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// password takes the password from --password-file, PHONEX_PASSWORD or a
// prompt, in that order. confirm asks twice on a terminal.
func password(file, label string, confirm bool) ([]byte, error) {
	if file != "" {
		return readPasswordFile(file)
	}
	if v := os.Getenv("PHONEX_PASSWORD"); v != "" {
		return []byte(v), nil
	}
	return prompt(label, confirm)
}

func readPasswordFile(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimRight(line, "\r")
	if len(line) == 0 {
		return nil, fmt.Errorf("password file %s: %w", path, client.ErrNoPassword)
	}
	return line, nil
}

func prompt(label string, confirm bool) ([]byte, error) {
	if !isTerminal(os.Stdin) {
		// Scripts may pipe the password on standard input.
		line, err := bufio.NewReader(os.Stdin).ReadBytes('\n')
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return nil, fmt.Errorf("%w: set PHONEX_PASSWORD, use --password-file, or run on a terminal (%v)", client.ErrNoPassword, err)
		}
		return line, nil
	}
	fmt.Fprint(os.Stderr, label)
	pw, err := term.ReadPassword(int(os.Stdin.Fd()))
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(os.Stderr, "Again: ")
		again, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, errors.New("the passwords differ")
		}
	}
	return pw, nil
}
