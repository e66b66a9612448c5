// Command phonexd runs a PhoneX cluster node and administers its data
// directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/server"
)

const defaultData = "phonexd-data"

const usage = `phonexd: a PhoneX cluster node

  phonexd init    --data DIR --domain DOMAIN [--host NAME_OR_IP ...]
  phonexd serve   [--data DIR] [--api-addr HOST:PORT] [--sip-addr HOST:PORT]
  phonexd user    add|list|disable|enable|remove --data DIR [USER] [--json] [--expires 168h]
  phonexd device  list|revoke|unlock --data DIR [USER[/DEVICE]] [--json]
  phonexd device  add-sip --data DIR USER --name NAME [--json]   (digest credentials for a standard SIP phone)

DIR defaults to ./` + defaultData + `. 'serve' on a DIR that does not exist yet initialises it
with domain localhost first.`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "init":
		err = cmdInit(ctx, os.Args[2:])
	case "serve":
		err = cmdServe(ctx, os.Args[2:])
	case "user":
		err = cmdUser(ctx, os.Args[2:])
	case "device":
		err = cmdDevice(ctx, os.Args[2:])
	case "help", "-h", "--help":
		fmt.Println(usage)
		return
	default:
		err = cli.Usage(usage)
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		cli.Fail("phonexd", err)
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func cmdInit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	data := fs.String("data", defaultData, "data directory")
	domain := fs.String("domain", "", "the cluster's domain (accounts are user@DOMAIN)")
	var hosts multi
	fs.Var(&hosts, "host", "name or address of this node for the server certificate (repeatable)")
	jsonOut := fs.Bool("json", false, "print JSON")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *domain == "" {
		return cli.Usage("phonexd init --data DIR --domain DOMAIN [--host NAME_OR_IP ...]")
	}
	cfg := server.Defaults(*data)
	cfg.Domain = strings.ToLower(*domain)
	if len(hosts) > 0 {
		cfg.Hosts = hosts
	}
	c, err := server.Init(ctx, cfg)
	if err != nil {
		return err
	}
	return printInit(cfg, c, *jsonOut)
}

func printInit(cfg server.Config, c *ca.CA, jsonOut bool) error {
	fp := ca.Fingerprint(c.Cert)
	if jsonOut {
		return cli.JSON(os.Stdout, map[string]string{"data": cfg.DataDir, "domain": cfg.Domain, "ca": filepath.Join(cfg.DataDir, ca.CACertFile), "ca_sha256": fp})
	}
	fmt.Printf("initialised %s for domain %s\nCA certificate: %s\nCA SHA-256 fingerprint: %s\n", cfg.DataDir, cfg.Domain, filepath.Join(cfg.DataDir, ca.CACertFile), fp)
	return nil
}

func cmdServe(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	data := fs.String("data", defaultData, "data directory")
	apiAddr := fs.String("api-addr", "", "HTTPS API address (overrides the configuration)")
	sipAddr := fs.String("sip-addr", "", "SIP over TLS address (overrides the configuration)")
	if _, err := cli.Parse(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*data, server.ConfigFile)); errors.Is(err, os.ErrNotExist) {
		cfg := server.Defaults(*data)
		c, err := server.Init(ctx, cfg)
		if err != nil {
			return err
		}
		if err := printInit(cfg, c, false); err != nil {
			return err
		}
	}
	cfg, err := server.LoadConfig(*data)
	if err != nil {
		return err
	}
	if *apiAddr != "" {
		cfg.APIAddr = *apiAddr
	}
	if *sipAddr != "" {
		cfg.SIPAddr = *sipAddr
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return server.Run(ctx, cfg, log, func(line string) { fmt.Println(line) })
}

func openAdmin(ctx context.Context, fs *flag.FlagSet, data string) (*server.Admin, error) {
	cfg, err := server.LoadConfig(data)
	if err != nil {
		return nil, err
	}
	return server.OpenAdmin(ctx, cfg)
}

func cmdUser(ctx context.Context, args []string) error {
	const u = "phonexd user add|list|disable|enable|remove --data DIR [USER@DOMAIN] [--json]"
	if len(args) == 0 {
		return cli.Usage(u)
	}
	fs := flag.NewFlagSet("user", flag.ContinueOnError)
	data := fs.String("data", defaultData, "data directory")
	jsonOut := fs.Bool("json", false, "print JSON")
	expires := fs.Duration("expires", 0, "activation code lifetime (default: code_ttl of the configuration, 168h)")
	pos, err := cli.Parse(fs, args[1:])
	if err != nil {
		return err
	}
	adm, err := openAdmin(ctx, fs, *data)
	if err != nil {
		return err
	}
	defer adm.Close()
	verb := args[0]
	if verb == "list" {
		users, err := adm.Users(ctx)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(os.Stdout, users)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tSTATUS\tDEVICES\tCREATED")
		for _, x := range users {
			st := x.Status
			if x.Locked {
				st += " (locked)"
			}
			if x.LoginLocked {
				st += " (logins locked)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", x.User, st, x.Devices, x.Created.Format(time.RFC3339))
		}
		return tw.Flush()
	}
	if len(pos) != 1 {
		return cli.Usage(u)
	}
	switch verb {
	case "add":
		act, err := adm.AddUser(ctx, pos[0], *expires)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(os.Stdout, act)
		}
		fmt.Printf("created %s\nactivation code: %s (expires %s)\nenroll with: phonex enroll %s --server HOST:PORT --ca-fingerprint SHA256 --code %s\n",
			act.User, act.Code, act.Expires.Format(time.RFC3339), act.User, act.Code)
		return nil
	case "disable", "enable":
		err = adm.SetUserEnabled(ctx, pos[0], verb == "enable")
	case "remove":
		err = adm.RemoveUser(ctx, pos[0])
	default:
		return cli.Usage(u)
	}
	if err != nil {
		return err
	}
	return result(*jsonOut, verb, pos[0])
}

func result(jsonOut bool, verb, subject string) error {
	past := map[string]string{"disable": "disabled", "enable": "enabled", "remove": "removed", "revoke": "revoked", "unlock": "unlocked"}[verb]
	if jsonOut {
		return cli.JSON(os.Stdout, map[string]string{"subject": subject, "result": past})
	}
	fmt.Printf("%s %s\n", past, subject)
	return nil
}

func cmdDevice(ctx context.Context, args []string) error {
	const u = "phonexd device list|revoke|unlock --data DIR [USER@DOMAIN[/DEVICE]] [--json] | phonexd device add-sip --data DIR USER@DOMAIN --name NAME"
	if len(args) == 0 {
		return cli.Usage(u)
	}
	fs := flag.NewFlagSet("device", flag.ContinueOnError)
	data := fs.String("data", defaultData, "data directory")
	jsonOut := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "device name (add-sip)")
	pos, err := cli.Parse(fs, args[1:])
	if err != nil {
		return err
	}
	adm, err := openAdmin(ctx, fs, *data)
	if err != nil {
		return err
	}
	defer adm.Close()
	switch args[0] {
	case "add-sip":
		if len(pos) != 1 || *name == "" {
			return cli.Usage(u)
		}
		d, err := adm.AddSIPDevice(ctx, pos[0], *name)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(os.Stdout, d)
		}
		fmt.Printf("created %s\nSIP username: %s\nSIP password: %s (shown once; it is not the account password)\nrealm: %s\nregistrar: %s (TLS)\n",
			d.Device, d.Username, d.Password, d.Realm, d.Registrar)
		return nil
	case "list":
		who := ""
		if len(pos) == 1 {
			who = pos[0]
		}
		ds, err := adm.Devices(ctx, who)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(os.Stdout, ds)
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tSUITE\tSTATUS\tEXPIRES\tFAILED ATTEMPTS")
		for _, d := range ds {
			st := d.Status
			if d.Locked {
				st += " (locked)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", d.Device, d.Suite, st, d.NotAfter.Format(time.RFC3339), d.Failures)
		}
		return tw.Flush()
	case "revoke":
		if len(pos) != 1 {
			return cli.Usage(u)
		}
		err = adm.RevokeDevice(ctx, pos[0])
	case "unlock":
		if len(pos) != 1 {
			return cli.Usage(u)
		}
		err = adm.Unlock(ctx, pos[0])
	default:
		return cli.Usage(u)
	}
	if err != nil {
		return err
	}
	return result(*jsonOut, args[0], pos[0])
}
