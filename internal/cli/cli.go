// Package cli holds what both commands share: flag parsing that accepts
// flags after arguments, and output as text or JSON.
package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
)

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

// JSON writes v as one line of JSON.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Fail prints an error and exits non-zero. Errors name the problem and,
// where one exists, the next step.
func Fail(prog string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", prog, err)
	os.Exit(1)
}

// Usage is an error for a wrong command line.
type Usage string

func (u Usage) Error() string { return "usage: " + string(u) }
