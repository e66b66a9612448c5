package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/server/adminauth"
	"github.com/phonex/phonex/internal/server/adminweb"
)

const adminSynopsis = "phonexd admin add|reset|remove --data DIR [--store STORE] NAME [--json] | phonexd admin list --data DIR [--store STORE] [--json]   (administrators of the web panel; password from a prompt or PHONEXD_ADMIN_PASSWORD)"

// adminPassword reads a new administrator's password: PHONEXD_ADMIN_PASSWORD,
// else a prompt on the terminal (asked twice), else one line of stdin.
func adminPassword(stdout io.Writer) (string, error) {
	if pw, ok := os.LookupEnv("PHONEXD_ADMIN_PASSWORD"); ok {
		return pw, nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return "", fmt.Errorf("password: set PHONEXD_ADMIN_PASSWORD or type it on stdin: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(stdout, "administrator password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(stdout)
	if err != nil {
		return "", err
	}
	fmt.Fprint(stdout, "again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(stdout)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the two passwords differ")
	}
	return string(a), nil
}

func cmdAdmin(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("admin", adminSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	verb, rest, err := verb(fs, args, []string{"add", "list", "remove", "reset"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	if verb == "list" {
		if err := noArgs(fs, pos); err != nil {
			return err
		}
	} else if len(pos) != 1 {
		return cli.Misuse(adminSynopsis, "admin %s takes one administrator NAME", verb)
	}
	adm, cfg, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	svc := adminauth.NewService(adm.Store(), cfg.Domain)
	switch verb {
	case "list":
		as, err := svc.List(ctx)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, as)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADMIN\tCREATED\tSTATUS")
		for _, a := range as {
			st := "ok"
			if a.Locked {
				st = "locked (phonexd admin reset)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Admin, a.Created.Format(time.RFC3339), st)
		}
		tw.Flush()
		fmt.Fprintln(stdout, cli.Plural(len(as), "administrator", "administrators"))
		return nil
	case "remove":
		if err := svc.Remove(ctx, pos[0]); err != nil {
			return err
		}
		return result(stdout, *jsonOut, "remove", pos[0])
	}
	pw, err := adminPassword(stdout)
	if err != nil {
		return err
	}
	var e adminauth.Enrollment
	if verb == "add" {
		e, err = svc.Add(ctx, pos[0], pw)
	} else {
		e, err = svc.Reset(ctx, pos[0], pw)
	}
	if err != nil {
		return err
	}
	if *jsonOut {
		return cli.JSON(stdout, e)
	}
	past := map[string]string{"add": "created", "reset": "reset"}[verb]
	fmt.Fprintf(stdout, "%s administrator %s\nsecond factor (TOTP, RFC 6238): add it to an authenticator app\n  secret: %s\n  otpauth URI: %s\n", past, e.Admin, e.Secret, e.URI)
	where := "set admin_addr in phonexd.conf or run phonexd serve --admin-addr 127.0.0.1:PORT"
	if cfg.Admin.Addr != "" {
		where = "https://" + cfg.Admin.Addr + "/"
	}
	fmt.Fprintf(stdout, "panel: %s\n", where)
	return nil
}

// adminHooks starts the admin panel in serve when an address is set.
func adminHooks(cfg server.Config) []server.Hook {
	if cfg.Admin.Addr == "" {
		return nil
	}
	return []server.Hook{adminweb.Hook(cfg.Admin.Addr)}
}
