// Command phonexd runs a PhoneX cluster node and administers its data
// directory.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

const (
	prog        = "phonexd"
	defaultData = "phonexd-data"
)

const usage = `phonexd: a PhoneX cluster node

  phonexd init    --data DIR --domain DOMAIN [--host NAME_OR_IP ...] [--store STORE] [--json]
  phonexd init    --data DIR --join DIR_OF_ANOTHER_NODE [--host NAME_OR_IP ...] [--store postgres://…] [--json]
  phonexd migrate [--data DIR] [--store STORE] [--json]
  phonexd store   copy --from STORE --to STORE [--json]   (e.g. --from sqlite:DIR --to postgres://…)
  phonexd serve   [--data DIR] [--store STORE] [--api-addr HOST:PORT] [--sip-addr HOST:PORT] [--sip-phone-addr HOST:PORT|off] [--relay-addr HOST:PORT] [--relay-tls-addr HOST:PORT|off] [--dns-addr HOST:PORT|off] [--metrics-addr HOST:PORT|off] [--admin-addr HOST:PORT]
  phonexd dns     ds|export|keygen [--data DIR] [--json]   (the DNSSEC-signed directory zone: DS record, signed zone file, keys)
  phonexd relay   [--data DIR] [--relay-addr HOST:PORT] [--relay-tls-addr HOST:PORT|off] [--secret-file FILE]   (the STUN/TURN relay alone)
  phonexd user    add|list|disable|enable|remove --data DIR [USER] [--json] [--expires 168h] [--qr] [--qr-png FILE]
  phonexd device  list|revoke|unlock --data DIR [USER[/DEVICE]] [--json]
  phonexd device  add-sip --data DIR USER --name NAME [--json]   (digest credentials for a standard SIP phone)
  phonexd contacts add|remove|list --data DIR USER [CONTACT] [--json]   (for accounts with only standard phones)
  phonexd federation add|accept|remove|list --data DIR [DOMAIN] [--ca-file FILE --api HOST:PORT --sip HOST:PORT] [--json]   (peer clusters)
` + operatorUsage + `  phonexd admin   add|list|remove|reset --data DIR [NAME] [--json]   (administrators of the web panel)
  phonexd --version

DIR defaults to ./` + defaultData + `. STORE is the data directory's SQLite database (the default),
sqlite:DIR or postgres://USER@HOST/DB; the admin commands take --store too. 'serve' on a DIR that does not exist yet initialises it
with domain localhost first. 'phonexd COMMAND --help' shows the options of one command.`

const (
	initSynopsis     = "phonexd init --data DIR (--domain DOMAIN | --join DIR_OF_ANOTHER_NODE) [--host NAME_OR_IP ...] [--store STORE] [--json]"
	serveSynopsis    = "phonexd serve [--data DIR] [--store STORE] [--api-addr HOST:PORT] [--sip-addr HOST:PORT] [--sip-phone-addr HOST:PORT|off] [--relay-addr HOST:PORT] [--relay-tls-addr HOST:PORT|off] [--dns-addr HOST:PORT|off] [--metrics-addr HOST:PORT|off] [--admin-addr HOST:PORT] [--bus nats://HOST:PORT[,...]] [--node-id ID]"
	userSynopsis     = "phonexd user add|list|disable|enable|remove --data DIR [--store STORE] [USER@DOMAIN] [--expires 168h] [--qr] [--qr-png FILE] [--json]"
	deviceSynopsis   = "phonexd device list|revoke|unlock --data DIR [--store STORE] [USER@DOMAIN[/DEVICE]] [--json] | phonexd device add-sip --data DIR USER@DOMAIN --name NAME [--json]"
	contactsSynopsis = "phonexd contacts add|remove --data DIR [--store STORE] USER@DOMAIN CONTACT@DOMAIN [--json] | phonexd contacts list --data DIR USER@DOMAIN [--json]"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches args (without the program name) and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Exit(prog, dispatch(ctx, args, stdout, stderr), stdout, stderr)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Overview(usage)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return cli.Help(usage + "\n")
	case "help":
		if len(args) > 1 && args[1] != "help" {
			return dispatch(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		return cli.Help(usage + "\n")
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, cli.VersionLine(prog))
		return nil
	case "init":
		return cmdInit(ctx, args[1:], stdout)
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "user":
		return cmdUser(ctx, args[1:], stdout)
	case "device":
		return cmdDevice(ctx, args[1:], stdout)
	case "contacts":
		return cmdContacts(ctx, args[1:], stdout)
	case "relay":
		return cmdRelay(ctx, args[1:], stdout, stderr)
	case "group":
		return cmdGroup(ctx, args[1:], stdout)
	case "policy":
		return cmdPolicy(ctx, args[1:], stdout)
	case "audit":
		return cmdAudit(ctx, args[1:], stdout)
	case "migrate":
		return cmdMigrate(ctx, args[1:], stdout)
	case "store":
		return cmdStore(ctx, args[1:], stdout, stderr)
	case "dns":
		return cmdDNS(ctx, args[1:], stdout)
	case "federation":
		return cmdFederation(ctx, args[1:], stdout) // federation.go
	case "admin":
		return cmdAdmin(ctx, args[1:], stdout)
	}
	return cli.UnknownCommand(prog, args[0], []string{"init", "serve", "user", "device", "contacts", "relay", "group", "policy", "audit", "migrate", "store", "dns", "federation", "admin", "help"}, "")
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func noArgs(fs *cli.Flags, pos []string) error {
	if len(pos) > 0 {
		return cli.Misuse(fs.Usage(), "unexpected argument %q", pos[0])
	}
	return nil
}

func cmdInit(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("init", initSynopsis)
	data := fs.String("data", defaultData, "data directory")
	domain := fs.String("domain", "", "the cluster's domain (accounts are user@DOMAIN; required)")
	var hosts multi
	fs.Var(&hosts, "host", "name or address of this node for the server certificate (repeatable)")
	storeSpec := fs.String("store", "", "the cluster's store: sqlite:DIR or postgres://… (default: SQLite in the data directory)")
	join := fs.String("join", "", "data directory of a node of the cluster to join: its CA, sealing key, domain and store are taken")
	jsonOut := fs.Bool("json", false, "print JSON")
	pos, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	cfg := server.Defaults(*data)
	cfg.Store = *storeSpec
	if len(hosts) > 0 {
		cfg.Hosts = hosts
	}
	if *join != "" {
		if *domain != "" {
			return cli.Misuse(initSynopsis, "--join takes the domain of the cluster it joins: no --domain")
		}
		c, err := server.Join(ctx, cfg, *join)
		if err != nil {
			return err
		}
		if cfg, err = server.LoadConfig(*data); err != nil {
			return err
		}
		return printInit(stdout, cfg, c, *jsonOut)
	}
	if err := fs.Require("domain"); err != nil {
		return err
	}
	cfg.Domain = strings.ToLower(*domain)
	c, err := server.Init(ctx, cfg)
	if err != nil {
		return err
	}
	return printInit(stdout, cfg, c, *jsonOut)
}

func printInit(w io.Writer, cfg server.Config, c *ca.CA, jsonOut bool) error {
	fp := ca.Fingerprint(c.Cert)
	ds, err := server.ZoneDS(cfg)
	if err != nil {
		return err
	}
	if jsonOut {
		return cli.JSON(w, map[string]string{"data": cfg.DataDir, "domain": cfg.Domain, "store": cfg.StoreName(), "ca": filepath.Join(cfg.DataDir, ca.CACertFile), "ca_sha256": fp,
			"dns_zone": cfg.ZoneName(), "ds": ds.String()})
	}
	fmt.Fprintf(w, "initialised %s for domain %s\nstore: %s\nCA certificate: %s\nCA SHA-256 fingerprint: %s\n", cfg.DataDir, cfg.Domain, cfg.StoreName(), filepath.Join(cfg.DataDir, ca.CACertFile), fp)
	fmt.Fprintf(w, "DS record for the parent of zone %s (also 'phonexd dns ds'):\n%s\n", cfg.ZoneName(), ds)
	return nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlags("serve", serveSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store: sqlite:DIR or postgres://… (overrides the configuration's store)")
	apiAddr := fs.String("api-addr", "", "HTTPS API address (overrides the configuration)")
	sipAddr := fs.String("sip-addr", "", "SIP over TLS address (overrides the configuration)")
	phoneAddr := fs.String("sip-phone-addr", "", "SIP over TLS address for standard phones, or off (overrides the configuration; default: the port after --sip-addr's)")
	relayAddr := fs.String("relay-addr", "", "STUN/TURN address for UDP and TCP (overrides relay_addr)")
	relayTLSAddr := fs.String("relay-tls-addr", "", "TURN over TLS address (overrides relay_tls_addr; 'off' disables)")
	dnsAddr := fs.String("dns-addr", "", "authoritative DNS address, UDP and TCP, for the directory zone (overrides dns_addr; 'off' disables)")
	metricsAddr := fs.String("metrics-addr", "", "metrics and health checks over HTTP (overrides metrics_addr; 'off' disables)")
	adminAddr := fs.String("admin-addr", "", "admin web panel HTTPS address (overrides admin_addr; off unless set)")
	busURL := fs.String("bus", "", "NATS URL(s) joining this node to the others sharing its store (overrides bus)")
	nodeID := fs.String("node-id", "", "this node's id on the bus (overrides node_id; default: generated)")
	pos, err := fs.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(fs, pos); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(*data, server.ConfigFile)); errors.Is(err, os.ErrNotExist) {
		cfg := server.Defaults(*data)
		cfg.Store = *storeSpec
		c, err := server.Init(ctx, cfg)
		if err != nil {
			return err
		}
		if err := printInit(stdout, cfg, c, false); err != nil {
			return err
		}
	}
	cfg, err := server.LoadConfig(*data)
	if err != nil {
		return err
	}
	if *storeSpec != "" {
		cfg.Store = *storeSpec
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	if *apiAddr != "" {
		cfg.APIAddr = *apiAddr
	}
	if *sipAddr != "" {
		cfg.SIPAddr = *sipAddr
	}
	if *phoneAddr != "" {
		cfg.SIPPhoneAddr = *phoneAddr
	}
	relayOverrides(&cfg, *relayAddr, *relayTLSAddr)
	dnsOverride(&cfg, *dnsAddr)
	if *metricsAddr != "" {
		cfg.MetricsAddr = *metricsAddr
	}
	if *adminAddr != "" {
		cfg.Admin.Addr = *adminAddr
	}
	if *busURL != "" {
		cfg.Cluster.Bus = *busURL
	}
	if *nodeID != "" {
		cfg.Cluster.NodeID = *nodeID
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	log.Info("store", "store", cfg.StoreName())
	return server.RunWith(ctx, cfg, log, func(line string) { fmt.Fprintln(stdout, line) }, adminHooks(cfg)...)
}

// verb splits the subcommand off args; "--help" alone asks for the help of
// the whole command.
func verb(fs *cli.Flags, args []string, verbs []string) (string, []string, error) {
	if len(args) == 0 {
		return "", nil, cli.Misuse(fs.Usage(), "missing subcommand: one of %s", strings.Join(verbs, ", "))
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return "", nil, cli.Help(fs.HelpText())
	}
	for _, v := range verbs {
		if args[0] == v {
			return v, args[1:], nil
		}
	}
	return "", nil, cli.UnknownCommand(prog+" "+fs.Name(), fs.Name()+" "+args[0], prefixed(fs.Name(), verbs), fs.Usage())
}

func prefixed(p string, vs []string) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = p + " " + v
	}
	return out
}

func cmdUser(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("user", userSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	expires := fs.Duration("expires", 0, "activation code lifetime (default: code_ttl of the configuration, 168h)")
	qr := fs.Bool("qr", false, "add: print an enrollment card (QR code) on the terminal")
	qrPNG := fs.String("qr-png", "", "add: write the enrollment card as a PNG to this file")
	verb, rest, err := verb(fs, args, []string{"add", "list", "disable", "enable", "remove"})
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
		return cli.Misuse(userSynopsis, "user %s takes one account, USER@DOMAIN", verb)
	}
	adm, cfg, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	switch verb {
	case "list":
		users, err := adm.Users(ctx)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, users)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
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
		tw.Flush()
		fmt.Fprintln(stdout, cli.Plural(len(users), "user", "users"))
		return nil
	case "add":
		act, err := adm.AddUser(ctx, pos[0], *expires)
		if err != nil {
			return err
		}
		addr, fp, err := enrollTarget(cfg)
		if err != nil {
			return err
		}
		if !*jsonOut {
			fmt.Fprintf(stdout, "created %s\nactivation code: %s (expires %s)\nenroll with: phonex enroll %s --server %s --ca-fingerprint %s --code %s\n",
				act.User, act.Code, act.Expires.Format(time.RFC3339), act.User, addr, fp, act.Code)
		}
		uri, err := printCard(stdout, adm, act, *qr, *qrPNG, *jsonOut)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, struct {
				server.Activation
				Server   string `json:"server"`
				CASHA256 string `json:"ca_sha256"`
				Card     string `json:"card,omitempty"`
			}{act, addr, fp, uri})
		}
		return nil
	case "disable", "enable":
		err = adm.SetUserEnabled(ctx, pos[0], verb == "enable")
	case "remove":
		err = adm.RemoveUser(ctx, pos[0])
	}
	if err != nil {
		return err
	}
	return result(stdout, *jsonOut, verb, pos[0])
}

// enrollTarget is server.EnrollTarget.
func enrollTarget(cfg server.Config) (addr, fingerprint string, err error) {
	return server.EnrollTarget(cfg)
}

func result(w io.Writer, jsonOut bool, verb, subject string) error {
	past := map[string]string{"disable": "disabled", "enable": "enabled", "remove": "removed", "revoke": "revoked", "unlock": "unlocked"}[verb]
	if jsonOut {
		return cli.JSON(w, map[string]string{"subject": subject, "result": past})
	}
	fmt.Fprintf(w, "%s %s\n", past, subject)
	return nil
}

func cmdDevice(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("device", deviceSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	name := fs.String("name", "", "device name (add-sip; required there)")
	verb, rest, err := verb(fs, args, []string{"list", "revoke", "unlock", "add-sip"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	switch {
	case verb == "list" && len(pos) > 1:
		return cli.Misuse(deviceSynopsis, "device list takes at most one USER@DOMAIN")
	case verb != "list" && len(pos) != 1:
		return cli.Misuse(deviceSynopsis, "device %s takes one %s", verb, map[bool]string{true: "USER@DOMAIN", false: "USER@DOMAIN/DEVICE"}[verb == "add-sip"])
	case verb == "add-sip":
		if err := fs.Require("name"); err != nil {
			return err
		}
	}
	adm, _, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	switch verb {
	case "add-sip":
		d, err := adm.AddSIPDevice(ctx, pos[0], *name)
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, d)
		}
		printSIPDevice(stdout, d)
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
			return cli.JSON(stdout, ds)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tSUITE\tSTATUS\tEXPIRES\tFAILED ATTEMPTS")
		for _, d := range ds {
			st := d.Status
			if d.Locked {
				st += " (locked)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\n", d.Device, d.Suite, st, d.NotAfter.Format(time.RFC3339), d.Failures)
		}
		tw.Flush()
		fmt.Fprintln(stdout, cli.Plural(len(ds), "device", "devices"))
		return nil
	case "revoke":
		err = adm.RevokeDevice(ctx, pos[0])
	case "unlock":
		err = adm.Unlock(ctx, pos[0])
	}
	if err != nil {
		return err
	}
	return result(stdout, *jsonOut, verb, pos[0])
}

// openAdmin opens the node's store in dir (or storeSpec, when set) for
// an admin command, which may run while serve does.
func openAdmin(ctx context.Context, dir, storeSpec string) (*server.Admin, server.Config, error) {
	cfg, err := server.LoadConfig(dir)
	if err != nil {
		return nil, cfg, err
	}
	if storeSpec != "" {
		cfg.Store = storeSpec
		if err := cfg.Validate(); err != nil {
			return nil, cfg, err
		}
	}
	adm, err := server.OpenAdmin(ctx, cfg)
	return adm, cfg, err
}

// printSIPDevice prints a phone's account settings as a phone asks for
// them.
func printSIPDevice(w io.Writer, d server.SIPDevice) {
	where := "the running node listens there"
	if d.Source != server.SourceListener {
		where = "from phonexd.conf; the node is not running"
	}
	fmt.Fprintf(w, "created %s\n", d.Device)
	fmt.Fprintf(w, "SIP address (identity): %s\n", d.Identity)
	fmt.Fprintf(w, "username: %s\n", d.Username)
	fmt.Fprintf(w, "password: %s (shown once; it is not the account password)\n", d.Password)
	fmt.Fprintf(w, "domain (realm): %s\n", d.Realm)
	fmt.Fprintf(w, "registrar and outbound proxy: %s (%s)\n", d.Registrar, where)
	fmt.Fprintf(w, "  server %s, port %s, transport TLS; trust the cluster CA (ca.pem)\n", d.Host, d.Port)
	fmt.Fprintf(w, "linphonec: register %s %s PASSWORD\n", d.Identity, d.Registrar)
}

func cmdContacts(ctx context.Context, args []string, stdout io.Writer) error {
	fs := cli.NewFlags("contacts", contactsSynopsis)
	data := fs.String("data", defaultData, "data directory")
	storeSpec := fs.String("store", "", "the cluster's store (overrides the configuration's store)")
	jsonOut := fs.Bool("json", false, "print JSON")
	verb, rest, err := verb(fs, args, []string{"add", "remove", "list"})
	if err != nil {
		return err
	}
	pos, err := fs.Parse(rest)
	if err != nil {
		return err
	}
	switch {
	case verb == "list" && len(pos) != 1:
		return cli.Misuse(contactsSynopsis, "contacts list takes one account, USER@DOMAIN")
	case verb != "list" && len(pos) != 2:
		return cli.Misuse(contactsSynopsis, "contacts %s takes an account and a contact, USER@DOMAIN CONTACT@DOMAIN", verb)
	}
	adm, _, err := openAdmin(ctx, *data, *storeSpec)
	if err != nil {
		return err
	}
	defer adm.Close()
	switch verb {
	case "list":
		cs, err := adm.Contacts(ctx, pos[0])
		if err != nil {
			return err
		}
		if *jsonOut {
			return cli.JSON(stdout, cs)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CONTACT\tSTATUS")
		for _, c := range cs {
			fmt.Fprintf(tw, "%s\t%s\n", c.Contact, c.Status)
		}
		tw.Flush()
		fmt.Fprintln(stdout, cli.Plural(len(cs), "contact", "contacts"))
		return nil
	case "add":
		err = adm.AddContact(ctx, pos[0], pos[1])
	case "remove":
		err = adm.RemoveContact(ctx, pos[0], pos[1])
	}
	if err != nil {
		return err
	}
	past := map[string]string{"add": "added", "remove": "removed"}[verb]
	if *jsonOut {
		return cli.JSON(stdout, map[string]string{"account": pos[0], "contact": pos[1], "result": past})
	}
	fmt.Fprintf(stdout, "%s %s %s the contacts of %s\n", past, pos[1], map[string]string{"add": "to", "remove": "from"}[verb], pos[0])
	return nil
}
