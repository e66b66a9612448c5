package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/storeopen"
)

const (
	migrateSynopsis = "phonexd migrate [--data DIR] [--store STORE] [--json]"
	storeSynopsis   = "phonexd store copy --from STORE --to STORE [--json]"
)

// cmdMigrate applies the store's pending migrations: the store named by
// --store, else the one of the data directory's configuration.
func cmdMigrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("migrate", migrateSynopsis)
	data := fs.String("data", defaultData, "data directory (its configuration names the store)")
	storeSpec := fs.String("store", "", "the store to migrate: a data directory, sqlite:DIR or postgres://… (default: the configuration's)")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	spec := *storeSpec
	if spec == "" {
		cfg, err := server.LoadConfig(*data)
		if err != nil {
			return err
		}
		spec = cfg.StoreSpec()
	}
	s, err := storeopen.Parse(spec)
	if err != nil {
		return err
	}
	// Opening applies what is pending, under the store's own lock
	// against nodes starting at the same time.
	st, err := s.Open(ctx)
	if err != nil {
		return err
	}
	st.Close()
	if *jsonOut {
		return cli.JSON(stdout, map[string]string{"store": s.String(), "result": "migrated"})
	}
	fmt.Fprintf(stdout, "%s: schema up to date\n", s)
	return nil
}

func cmdStore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("store", storeSynopsis)
	from := fs.String("from", "", "the store to copy: a data directory, sqlite:DIR or postgres://… (required)")
	to := fs.String("to", "", "the empty store to copy into (required)")
	jsonOut := fs.Bool("json", false, "print JSON")
	_, rest, err := verb(fs, args, []string{"copy"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	if err := fs.Require("from", "to"); err != nil {
		return err
	}
	src, err := storeopen.Parse(*from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	dst, err := storeopen.Parse(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if src == dst {
		return cli.Misuse(storeSynopsis, "--from and --to name the same store")
	}
	a, err := src.Open(ctx)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer a.Close()
	b, err := dst.Open(ctx)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer b.Close()
	progress := copyProgress(stderr)
	start := time.Now()
	counts, err := store.Copy(ctx, a, b, progress.row)
	progress.done()
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	var total int64
	for _, n := range counts {
		total += n
	}
	if *jsonOut {
		return cli.JSON(stdout, struct {
			From    string           `json:"from"`
			To      string           `json:"to"`
			Rows    map[string]int64 `json:"rows"`
			Total   int64            `json:"total"`
			Seconds float64          `json:"seconds"`
		}{src.String(), dst.String(), counts, total, time.Since(start).Seconds()})
	}
	fmt.Fprintf(stdout, "copied %s to %s\n", src, dst)
	for _, t := range store.CopyTables {
		fmt.Fprintf(stdout, "  %-16s %d\n", t.Name, counts[t.Name])
	}
	fmt.Fprintf(stdout, "%s in %.1fs\n", cli.Plural(int(total), "row", "rows"), time.Since(start).Seconds())
	return nil
}

// progress shows, on a terminal only, the table being copied and its rows
// so far, at most a few times a second.
type progress struct {
	w     io.Writer
	on    bool
	last  time.Time
	shown bool
}

func copyProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	return &progress{w: w, on: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progress) row(table string, n int64) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.shown = true
	fmt.Fprintf(p.w, "\r\033[Kcopying %s: %d rows", table, n)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
