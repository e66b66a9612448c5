// Command phonex is the PhoneX device: enrollment, the profile, contacts,
// messages and calls. It is built on the public SDK (package sdk) alone,
// with internal/cli for flags and output.
package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

const prog = "phonex"

const usage = `phonex: a PhoneX device

  phonex enroll USER@DOMAIN --server HOST:PORT (--ca-file FILE | --ca-fingerprint SHA256) --code CODE
                [--device NAME] [--suite ec|rsa] [--rsa-bits 2048|3072|4096]
  phonex enroll [USER@DOMAIN] (--qr-image CARD.png | --qr-text 'phonex://enroll?...') [--device NAME] [--suite ec|rsa]
  phonex login  USER@DOMAIN --server HOST:PORT (--ca-file FILE | --ca-fingerprint SHA256) [--device NAME]
  phonex whoami [--json]
  phonex contacts add|remove USER@DOMAIN [--json]
  phonex contacts trust USER@DOMAIN/DEVICE [--json]
  phonex contacts [list] [--json]
  phonex devices [--json]
  phonex passwd [--new-password-file FILE]
  phonex send USER@DOMAIN TEXT [--insecure] [--json]
  phonex listen [--for DURATION] [--json]
  phonex presence set online|away|busy|dnd|invisible [--note TEXT] [--json]
  phonex presence [--json]
  phonex inbox [--with USER@DOMAIN] [--read] [--json]
  phonex read USER@DOMAIN [--json]
  phonex resend MESSAGE_ID [--json]
  phonex call USER@DOMAIN [--device NAME] [--ring-for DUR] [--play F.wav] [--record F.wav] [--for DUR] [--json]
  phonex call SIP_URI --direct [--play F.wav] [--record F.wav] [--for DUR] [--json] [--zrtp-prefer X255,DH3k] [--sas B256] [--allow-insecure] [--listen IP:PORT] [--transport udp|tcp] [--zrtp-cache DIR]
  phonex answer [--decline] [--play F.wav] [--record F.wav] [--for DUR] [--json]
  phonex answer --direct --listen IP:PORT [same options as call]
  phonex verify-call ZID|PEER SAS-WORDS [--zrtp-cache DIR] [--json]
  phonex relay-credentials [--json]
  phonex send-file USER@DOMAIN PATH [--json]
  phonex files [--json]
  phonex get ID [-o PATH] [--wav] [--json]
  phonex voice USER@DOMAIN --wav F.wav [--json]
  phonex servers [--set HOST:PORT[,HOST:PORT...]] [--json]   (the cluster's API addresses, for failover)
  phonex directory publish --number +E164 [--code CODE | --no-wait] [--json]
  phonex directory lookup +E164|USER@DOMAIN [--dns HOST:PORT [--anchor FILE]] [--json]
  phonex directory discover --file numbers.txt [--json]
  phonex directory notices [--json]
  phonex directory cancel REPLACEMENT [--json]
  phonex --version

Every command takes --profile DIR (default ~/.phonex); call and answer keep
the ZRTP secrets in its encrypted database, or without a profile in --zrtp-cache.
The password comes from --password-file FILE, PHONEX_PASSWORD, or a prompt.
'phonex COMMAND --help' shows the options of one command.`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// app is one run of the command, with its standard streams and
// environment, so that tests can run it in process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	in             *bufio.Reader // stdin, once a prompt has read from it
}

type command struct {
	name string
	run  func(a *app, ctx context.Context, args []string) error
}

var commands = []command{
	{"enroll", func(a *app, ctx context.Context, args []string) error { return a.cmdEnroll(ctx, "enroll", args) }},
	{"login", func(a *app, ctx context.Context, args []string) error { return a.cmdEnroll(ctx, "login", args) }},
	{"whoami", (*app).cmdWhoami},
	{"contacts", (*app).cmdContacts},
	{"devices", (*app).cmdDevices},
	{"passwd", (*app).cmdPasswd},
	{"send", (*app).cmdSend},
	{"listen", (*app).cmdListen},
	{"presence", (*app).cmdPresence},
	{"inbox", (*app).cmdInbox},
	{"read", (*app).cmdRead},
	{"resend", (*app).cmdResend},
	{"call", (*app).cmdCall},
	{"answer", (*app).cmdAnswer},
	{"verify-call", (*app).cmdVerifyCall},
	{"relay-credentials", (*app).cmdRelayCredentials},
	{"send-file", (*app).cmdSendFile},
	{"files", (*app).cmdFiles},
	{"get", (*app).cmdGet},
	{"voice", (*app).cmdVoice},
	{"servers", (*app).cmdServers},
	{"directory", (*app).cmdDirectory}, // directory.go
}

// cmdHelp is 'phonex help [COMMAND]'.
func (a *app) cmdHelp(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" {
		return cli.Help(usage + "\n")
	}
	return a.dispatch(ctx, append(args[:1:1], "--help"))
}

// run dispatches args (without the program name) and returns the exit code.
func (a *app) run(ctx context.Context, args []string) int {
	return cli.Exit(prog, a.dispatch(ctx, args), a.stdout, a.stderr)
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return cli.Overview(usage)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return cli.Help(usage + "\n")
	case "-version", "--version", "version":
		fmt.Fprintln(a.stdout, cli.VersionLine(prog))
		return nil
	}
	if args[0] == "help" {
		return a.cmdHelp(ctx, args[1:])
	}
	names := []string{"help"}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(a, ctx, args[1:])
		}
		names = append(names, c.name)
	}
	return cli.UnknownCommand(prog, args[0], names, "")
}

// common holds the flags of every profile command.
type common struct {
	*cli.Flags
	a       *app
	profile *string
	pwFile  *string
	jsonOut *bool
}

func (a *app) newCommon(name, synopsis string) *common {
	fs := cli.NewFlags(name, synopsis)
	home, _ := os.UserHomeDir()
	return &common{Flags: fs, a: a,
		profile: fs.String("profile", filepath.Join(home, ".phonex"), "profile directory"),
		pwFile:  fs.String("password-file", "", "read the password from this file (first line); else PHONEX_PASSWORD or a prompt"),
		jsonOut: fs.Bool("json", false, "print JSON"),
	}
}

func (c *common) options() *sdk.Options {
	return &sdk.Options{Logger: logger(c.a.getenv, c.a.stderr), Progress: func(step string) {
		if isTerminal(c.a.stderr) && !*c.jsonOut {
			fmt.Fprintf(c.a.stderr, "… %s\n", step)
		}
	}}
}

func (c *common) open(ctx context.Context) (*sdk.Device, []byte, error) {
	if !sdk.Exists(*c.profile) {
		return nil, nil, fmt.Errorf("%w: %s (enroll first with phonex enroll, or give --profile)", sdk.ErrNoProfile, *c.profile)
	}
	pw, err := c.a.password(*c.pwFile, "Password: ", false)
	if err != nil {
		return nil, nil, err
	}
	d, err := sdk.Open(ctx, *c.profile, pw, c.options())
	return d, pw, err
}

// withDevice opens the profile, runs f with it and closes it.
func (c *common) withDevice(ctx context.Context, f func(*sdk.Device) error) error {
	d, _, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	return f(d)
}

func (c *common) print(v any, text func(w io.Writer)) error {
	if *c.jsonOut {
		return cli.JSON(c.a.stdout, v)
	}
	text(c.a.stdout)
	return nil
}

func (a *app) cmdEnroll(ctx context.Context, cmd string, args []string) error {
	syn := "phonex enroll USER@DOMAIN --server HOST:PORT (--ca-file FILE | --ca-fingerprint SHA256) --code CODE [--device NAME] [--suite ec|rsa] [--rsa-bits N] | phonex enroll [USER@DOMAIN] (--qr-image FILE | --qr-text TEXT) [--device NAME] [--suite ec|rsa]"
	if cmd == "login" {
		syn = "phonex login USER@DOMAIN --server HOST:PORT (--ca-file FILE | --ca-fingerprint SHA256) [--device NAME]"
	}
	c := a.newCommon(cmd, syn)
	server := c.String("server", "", "the home cluster's API, HOST:PORT, or its nodes' HOST:PORT,HOST:PORT,... tried in turn (required)")
	caFile := c.String("ca-file", "", "the cluster's CA certificate (PEM)")
	fp := c.String("ca-fingerprint", "", "the SHA-256 fingerprint of the cluster's CA")
	code := c.String("code", "", "activation code from the operator (enroll; required)")
	device := c.String("device", "", "this device's name (default: the host name)")
	suite := c.String("suite", "ec", "key suite: ec (Ed25519 + X25519) or rsa")
	bits := c.Int("rsa-bits", 3072, "RSA key size for --suite rsa: 2048, 3072 or 4096")
	var qrImage, qrText *string
	if cmd == "enroll" {
		qrImage = c.String("qr-image", "", "enroll from an enrollment card: a PNG or JPEG picture of its QR code")
		qrText = c.String("qr-text", "", "enroll from an enrollment card's text, phonex://enroll?...")
	}
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if qrImage != nil && (*qrImage != "" || *qrText != "") {
		return a.enrollFromCard(ctx, c, syn, pos, *qrImage, *qrText, *server, *caFile, *fp, *code, *device, *suite, *bits)
	}
	if len(pos) != 1 {
		return cli.Misuse(syn, "%s takes one account, USER@DOMAIN (got %d arguments)", cmd, len(pos))
	}
	required := []string{"server"}
	if cmd == "enroll" {
		required = append(required, "code")
	}
	if err := c.Require(required...); err != nil {
		return err
	}
	if *caFile == "" && *fp == "" {
		return cli.Misuse(syn, "missing required flag --ca-file or --ca-fingerprint (the cluster's CA)")
	}
	cfg := sdk.EnrollConfig{Dir: *c.profile, User: pos[0], Device: *device, Server: *server, CAFile: *caFile, CAFingerprint: *fp,
		Code: *code, Suite: sdk.KeySuite(*suite), RSABits: *bits}
	return a.enroll(ctx, c, cmd, cfg)
}

// enroll asks for the password and enrolls (or logs in) with cfg.
func (a *app) enroll(ctx context.Context, c *common, cmd string, cfg sdk.EnrollConfig) error {
	pw, err := a.password(*c.pwFile, "Password: ", cmd == "enroll")
	if err != nil {
		return err
	}
	cfg.Password = pw
	start := time.Now()
	var d *sdk.Device
	if cmd == "enroll" {
		d, err = sdk.Enroll(ctx, cfg, c.options())
	} else {
		d, err = sdk.Login(ctx, cfg, c.options())
	}
	if err != nil {
		return err
	}
	defer d.Close()
	w, err := d.Whoami(ctx)
	if err != nil {
		return err
	}
	return c.print(w, func(out io.Writer) {
		fmt.Fprintf(out, "enrolled %s (%s keys) in %.1fs; profile in %s\ncertificate %s valid until %s\n", w.Identity, w.Suite, time.Since(start).Seconds(),
			*c.profile, w.Serial, w.NotAfter.Format(time.RFC3339))
	})
}

// noArgs fails when a command that takes none got positional arguments.
func noArgs(c *common, pos []string) error {
	if len(pos) > 0 {
		return cli.Misuse(c.Usage(), "unexpected argument %q", pos[0])
	}
	return nil
}

// show runs a command that takes no arguments and prints one thing the
// device fetches: as JSON with --json, otherwise as text writes it.
func show[T any](ctx context.Context, c *common, args []string, get func(*sdk.Device, context.Context) (T, error), text func(io.Writer, T)) error {
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		v, err := get(d, ctx)
		if err != nil {
			return err
		}
		return c.print(v, func(out io.Writer) { text(out, v) })
	})
}

func (a *app) cmdWhoami(ctx context.Context, args []string) error {
	c := a.newCommon("whoami", "phonex whoami [--json]")
	return show(ctx, c, args, (*sdk.Device).Whoami, func(out io.Writer, w sdk.Info) {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "identity\t%s\nkey suite\t%s\ncertificate serial\t%s\ncertificate expires\t%s\nserver\t%s\nCA SHA-256\t%s\n",
			w.Identity, w.Suite, w.Serial, w.NotAfter.Format(time.RFC3339), w.Server, w.CASHA256)
		tw.Flush()
	})
}

func (a *app) cmdContacts(ctx context.Context, args []string) error {
	const syn = "phonex contacts add|remove USER@DOMAIN [--json] | phonex contacts trust USER@DOMAIN/DEVICE [--json] | phonex contacts [list] [--json]"
	verb := "list"
	if len(args) > 0 && (args[0] == "add" || args[0] == "remove" || args[0] == "trust" || args[0] == "list") {
		verb, args = args[0], args[1:]
	}
	c := a.newCommon("contacts", syn)
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	switch {
	case verb == "list" && len(pos) > 0:
		if s := cli.Suggest(pos[0], []string{"add", "remove", "trust", "list"}); s != "" {
			return cli.Misuse(syn, "unknown command \"contacts %s\" (did you mean \"contacts %s\"?)", pos[0], s)
		}
		return cli.Misuse(syn, "unexpected argument %q", pos[0])
	case verb == "trust" && len(pos) != 1:
		return cli.Misuse(syn, "contacts trust takes one device, USER@DOMAIN/DEVICE")
	case verb != "list" && len(pos) != 1:
		return cli.Misuse(syn, "contacts %s takes one account, USER@DOMAIN", verb)
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		switch verb {
		case "add":
			ct, err := d.AddContact(ctx, pos[0])
			if err != nil {
				return err
			}
			return c.print(ct, func(out io.Writer) {
				fmt.Fprintf(out, "added %s (%s)\n", ct.User, cli.Plural(len(ct.Devices), "device", "devices"))
			})
		case "trust":
			// The user confirms a new or changed device after checking it
			// with the contact; until then listen repeats the notice.
			if err := d.TrustDevice(ctx, pos[0]); err != nil {
				return err
			}
			return c.print(map[string]string{"trusted": pos[0]}, func(out io.Writer) { fmt.Fprintf(out, "trusted %s\n", pos[0]) })
		case "remove":
			if err := d.RemoveContact(ctx, pos[0]); err != nil {
				return err
			}
			return c.print(map[string]string{"removed": pos[0]}, func(out io.Writer) { fmt.Fprintf(out, "removed %s\n", pos[0]) })
		}
		list, err := d.Contacts(ctx)
		if err != nil {
			return err
		}
		cs := c.withPresence(ctx, d, list)
		return c.print(cs, func(out io.Writer) {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONTACT\tDEVICE\tSUITE\tKEY (SHA-256)\tTRUST")
			for _, ct := range cs {
				if len(ct.Devices) == 0 {
					fmt.Fprintf(tw, "%s\t-\t\t\t%s\n", ct.User, ct.Trust)
				} else {
					// A conversation is as trusted as its least trusted device.
					fmt.Fprintf(tw, "%s\t(all)\t\t\t%s\n", ct.User, ct.Trust)
				}
				for _, dv := range ct.Devices {
					warn := ""
					switch {
					case dv.KeyChanged:
						warn = "  KEY CHANGED since first seen: verify with the contact, then phonex contacts trust " + ct.User + "/" + dv.Name
					case dv.NewDevice:
						warn = "  NEW DEVICE: verify with the contact, then phonex contacts trust " + ct.User + "/" + dv.Name
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s%s\n", ct.User, dv.Name, dv.Suite, dv.KeySHA256[:16], dv.Trust, warn)
				}
			}
			tw.Flush()
			printPresence(out, cs)
		})
	})
}

func (a *app) cmdDevices(ctx context.Context, args []string) error {
	c := a.newCommon("devices", "phonex devices [--json]")
	return show(ctx, c, args, (*sdk.Device).Devices, func(out io.Writer, ds []sdk.AccountDevice) {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tSUITE\tSTATUS\tEXPIRES")
		for _, x := range ds {
			name := x.Name
			if x.Current {
				name += " (this device)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, x.Suite, x.Status, x.NotAfter.Format(time.RFC3339))
		}
		tw.Flush()
		fmt.Fprintln(out, cli.Plural(len(ds), "device", "devices"))
	})
}

func (a *app) cmdPasswd(ctx context.Context, args []string) error {
	c := a.newCommon("passwd", "phonex passwd [--new-password-file FILE]   (the new password: --new-password-file, PHONEX_NEW_PASSWORD, or a prompt)")
	newFile := c.String("new-password-file", "", "read the new password from this file (else PHONEX_NEW_PASSWORD or a prompt)")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	d, old, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	var nu []byte
	if *newFile != "" {
		nu, err = readPasswordFile(*newFile)
	} else if v := a.getenv("PHONEX_NEW_PASSWORD"); v != "" {
		nu = []byte(v)
	} else {
		nu, err = a.prompt("New password: ", true, "PHONEX_NEW_PASSWORD", "--new-password-file")
	}
	if err != nil {
		return fmt.Errorf("new password: %w", err)
	}
	if err := d.ChangePassword(ctx, old, nu, c.options()); err != nil {
		return err
	}
	return c.print(map[string]string{"status": "password changed"}, func(out io.Writer) {
		fmt.Fprintln(out, "password changed; other devices keep opening with the password they last used until you run phonex passwd there")
	})
}

func (a *app) cmdSend(ctx context.Context, args []string) error {
	c := a.newCommon("send", "phonex send USER@DOMAIN TEXT [--insecure] [--json]")
	insecure := c.Bool("insecure", false, "send in plain text, NOT end-to-end encrypted: the cluster can read it; reaches the recipient's standard SIP phones too")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return cli.Misuse(c.Usage(), "send takes the recipient USER@DOMAIN and the TEXT")
	}
	text := strings.Join(pos[1:], " ")
	return c.withDevice(ctx, func(d *sdk.Device) error {
		r, err := d.SendWith(ctx, pos[0], text, sdk.SendOptions{Insecure: *insecure})
		id := r.ID
		if err != nil {
			if id != "" && !strings.Contains(err.Error(), id) {
				// The id is what 'phonex resend' needs.
				err = fmt.Errorf("message %s: %w", id, err)
			}
			return err
		}
		out := struct {
			ID           string   `json:"id"`
			To           string   `json:"to"`
			State        string   `json:"state"`
			Insecure     bool     `json:"insecure,omitempty"`
			NotDelivered []string `json:"not_delivered,omitempty"`
		}{id, pos[0], string(sdk.StateSent), r.Insecure, r.NotDelivered}
		return c.print(out, func(w io.Writer) {
			if r.Insecure {
				fmt.Fprintf(w, "sent %s to %s NOT ENCRYPTED (--insecure): the cluster could read it\n", id, pos[0])
			} else {
				fmt.Fprintf(w, "sent %s to %s\n", id, pos[0])
			}
			for _, n := range r.NotDelivered {
				fmt.Fprintf(w, "%s (send with --insecure to reach it in plain text)\n", n)
			}
		})
	})
}

func (a *app) cmdListen(ctx context.Context, args []string) error {
	c := a.newCommon("listen", "phonex listen [--for DURATION] [--json]")
	dur := c.Duration("for", 0, "stop after this long (default: until interrupted)")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		if *dur > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *dur)
			defer cancel()
		}
		out := c.a.stdout
		return d.Listen(ctx, func(e sdk.Event) {
			defer syncOut(out)
			if *c.jsonOut {
				cli.JSON(out, e)
				return
			}
			ts := e.Time.Local().Format("15:04:05")
			switch e.Type {
			case sdk.EventReady:
				fmt.Fprintf(out, "%s ready: listening as %s (Ctrl-C to stop)\n", ts, d.Identity())
			case sdk.EventMessage:
				dir, who := "from "+e.From+"/"+e.FromDevice, ""
				if e.Outgoing {
					dir = "sent to " + e.Peer + " from your device " + e.FromDevice
				}
				if e.Insecure {
					who = " [NOT ENCRYPTED]"
				}
				if e.Trust == sdk.TrustUnsafe || e.ConversationTrust == sdk.TrustUnsafe {
					who += " [UNSAFE: a SAS was rejected or the keys bound into a call differed]"
				} else if e.ConversationTrust == sdk.TrustVerified {
					who += " [verified]"
				}
				fmt.Fprintf(out, "%s %s %s%s: %s\n", ts, e.ID, dir, who, e.Text)
			case sdk.EventDelivered, sdk.EventRead:
				fmt.Fprintf(out, "%s %s %s by %s\n", ts, e.ID, e.Type, e.Peer)
			case sdk.EventSent:
				mark := ""
				if e.Insecure {
					mark = " [NOT ENCRYPTED]"
				}
				fmt.Fprintf(out, "%s %s sent to %s%s\n", ts, e.ID, e.Peer, mark)
			case sdk.EventFailed:
				fmt.Fprintf(out, "%s %s to %s FAILED: %s\n", ts, e.ID, e.Peer, e.Error)
			case sdk.EventNotDelivered:
				fmt.Fprintf(out, "%s %s %s\n", ts, e.ID, e.Error)
			case sdk.EventPresence:
				fmt.Fprintf(out, "%s %s is %s\n", ts, e.Peer, presenceText(e.Presence))
			case sdk.EventCall:
				fmt.Fprintf(out, "%s call from %s/%s: %s\n", ts, e.Peer, e.FromDevice, strings.ReplaceAll(e.State, "_", " "))
			default:
				fmt.Fprintf(out, "%s %s: %s\n", ts, e.Type, e.Error)
			}
		})
	})
}

// syncOut flushes w when it is a file, so that a reader of a pipe sees each
// event as it happens.
func syncOut(w io.Writer) {
	if f, ok := w.(*os.File); ok {
		f.Sync()
	}
}

func (a *app) cmdInbox(ctx context.Context, args []string) error {
	c := a.newCommon("inbox", "phonex inbox [--with USER@DOMAIN] [--read] [--json]")
	with := c.String("with", "", "only the conversation with USER@DOMAIN")
	markRead := c.Bool("read", false, "mark the shown messages from --with read and send read receipts")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if *markRead && *with == "" {
		return cli.Misuse(c.Usage(), "--read needs --with USER@DOMAIN")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		ms, err := d.Inbox(ctx, *with)
		if err != nil {
			return err
		}
		if *markRead {
			if _, err := d.MarkRead(ctx, *with); err != nil {
				return err
			}
		}
		return c.print(ms, func(out io.Writer) {
			for _, m := range ms {
				arrow := "<-"
				if m.Direction == "out" {
					arrow = "->"
				}
				flag := ""
				if m.Insecure {
					flag = " [NOT ENCRYPTED]"
				}
				fmt.Fprintf(out, "%s %s %s %s %-9s%s %s\n", m.Time.Local().Format("2006-01-02 15:04"), m.ID, arrow, m.Peer, m.State, flag, m.Text)
			}
		})
	})
}

func (a *app) cmdRead(ctx context.Context, args []string) error {
	c := a.newCommon("read", "phonex read USER@DOMAIN [--json]")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Misuse(c.Usage(), "read takes one account, USER@DOMAIN")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		n, err := d.MarkRead(ctx, pos[0])
		if err != nil {
			return err
		}
		return c.print(map[string]any{"peer": pos[0], "marked_read": n}, func(out io.Writer) {
			fmt.Fprintf(out, "marked %s from %s read\n", cli.Plural(n, "message", "messages"), pos[0])
		})
	})
}

func (a *app) cmdResend(ctx context.Context, args []string) error {
	c := a.newCommon("resend", "phonex resend MESSAGE_ID [--json]")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Misuse(c.Usage(), "resend takes one MESSAGE_ID")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		if err := d.Resend(ctx, pos[0]); err != nil {
			return err
		}
		return c.print(map[string]string{"id": pos[0], "state": string(sdk.StateSent)}, func(out io.Writer) { fmt.Fprintf(out, "sent %s\n", pos[0]) })
	})
}
