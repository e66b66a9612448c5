// Command phonex is the PhoneX device: enrollment, the profile, contacts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/keys"
)

const usage = `phonex: a PhoneX device

  phonex enroll USER@DOMAIN --server HOST:PORT (--ca-file FILE | --ca-fingerprint SHA256) --code CODE
                [--device NAME] [--suite ec|rsa] [--rsa-bits 2048|3072|4096]
  phonex login  USER@DOMAIN --server HOST:PORT (--ca-file FILE | --ca-fingerprint SHA256) [--device NAME]
  phonex whoami [--json]
  phonex contacts add|remove USER@DOMAIN [--json]
  phonex contacts [list] [--json]
  phonex devices [--json]
  phonex passwd
  phonex send USER@DOMAIN TEXT [--json]
  phonex listen [--for DURATION] [--json]
  phonex inbox [--with USER@DOMAIN] [--read] [--json]
  phonex read USER@DOMAIN
  phonex resend MESSAGE_ID
  phonex call SIP_URI --direct [--play F.wav] [--record F.wav] [--for DUR] [--json] [--zrtp-prefer X255,DH3k] [--sas B256] [--allow-insecure] [--listen IP:PORT] [--transport udp|tcp] [--zrtp-cache DIR]
  phonex answer --direct --listen IP:PORT [same options as call]
  phonex verify-call ZID|PEER SAS-WORDS [--zrtp-cache DIR] [--json]

Every command takes --profile DIR (default ~/.phonex). The password comes from
PHONEX_PASSWORD, --password-file FILE, or a prompt.`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "enroll", "login":
		err = cmdEnroll(ctx, cmd, args)
	case "whoami":
		err = cmdWhoami(ctx, args)
	case "contacts":
		err = cmdContacts(ctx, args)
	case "devices":
		err = cmdDevices(ctx, args)
	case "passwd":
		err = cmdPasswd(ctx, args)
	case "send":
		err = cmdSend(ctx, args)
	case "listen":
		err = cmdListen(ctx, args)
	case "inbox":
		err = cmdInbox(ctx, args)
	case "read":
		err = cmdRead(ctx, args)
	case "resend":
		err = cmdResend(ctx, args)
	case "call":
		err = cmdCall(ctx, args)
	case "answer":
		err = cmdAnswer(ctx, args)
	case "verify-call":
		err = cmdVerifyCall(ctx, args)
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
		cli.Fail("phonex", err)
	}
}

// common holds the flags of every command.
type common struct {
	fs       *flag.FlagSet
	profile  *string
	pwFile   *string
	jsonOut  *bool
	progress func(string)
}

func newCommon(name string) *common {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	home, _ := os.UserHomeDir()
	c := &common{fs: fs,
		profile: fs.String("profile", filepath.Join(home, ".phonex"), "profile directory"),
		pwFile:  fs.String("password-file", "", "read the password from this file (first line)"),
		jsonOut: fs.Bool("json", false, "print JSON"),
	}
	c.progress = func(step string) {
		if isTerminal(os.Stderr) && !*c.jsonOut {
			fmt.Fprintf(os.Stderr, "… %s\n", step)
		}
	}
	return c
}

func (c *common) options() *client.Options {
	return &client.Options{Progress: c.progress, Log: logger()}
}

func (c *common) open(ctx context.Context) (*client.Profile, []byte, error) {
	if !client.Exists(*c.profile) {
		return nil, nil, fmt.Errorf("%w: %s (enroll first with phonex enroll, or give --profile)", client.ErrNoProfile, *c.profile)
	}
	pw, err := password(*c.pwFile, "Password: ", false)
	if err != nil {
		return nil, nil, err
	}
	p, err := client.Open(ctx, *c.profile, pw, c.options())
	return p, pw, err
}

// withProfile opens the profile, runs f with it and closes it.
func (c *common) withProfile(ctx context.Context, f func(*client.Profile) error) error {
	p, _, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	return f(p)
}

func (c *common) print(v any, text func()) error {
	if *c.jsonOut {
		return cli.JSON(os.Stdout, v)
	}
	text()
	return nil
}

func cmdEnroll(ctx context.Context, cmd string, args []string) error {
	c := newCommon(cmd)
	server := c.fs.String("server", "", "the home cluster's API, HOST:PORT")
	caFile := c.fs.String("ca-file", "", "the cluster's CA certificate (PEM)")
	fp := c.fs.String("ca-fingerprint", "", "the SHA-256 fingerprint of the cluster's CA")
	code := c.fs.String("code", "", "activation code from the operator (enroll)")
	device := c.fs.String("device", "", "this device's name (default: the host name)")
	suite := c.fs.String("suite", "ec", "key suite: ec (Ed25519 + X25519) or rsa")
	bits := c.fs.Int("rsa-bits", 3072, "RSA key size for --suite rsa: 2048, 3072 or 4096")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *server == "" || (cmd == "enroll" && *code == "") {
		return cli.Usage(usage)
	}
	if *suite != "rsa" {
		*bits = 0
	}
	pw, err := password(*c.pwFile, "Password: ", cmd == "enroll")
	if err != nil {
		return err
	}
	req := client.EnrollRequest{Dir: *c.profile, User: pos[0], Device: *device, Server: *server, CAFile: *caFile, Fingerprint: *fp,
		Code: *code, Password: pw, Suite: keys.Suite(*suite), RSABits: *bits}
	start := time.Now()
	var p *client.Profile
	if cmd == "enroll" {
		p, err = client.Enroll(ctx, req, c.options())
	} else {
		p, err = client.Login(ctx, req, c.options())
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", cmd, pos[0], err)
	}
	defer p.Close()
	w, err := p.Whoami(ctx)
	if err != nil {
		return err
	}
	return c.print(w, func() {
		fmt.Printf("enrolled %s (%s keys) in %.1fs; profile in %s\ncertificate %s valid until %s\n", w.Identity, w.Suite, time.Since(start).Seconds(),
			*c.profile, w.Serial, w.NotAfter.Format(time.RFC3339))
	})
}

func cmdWhoami(ctx context.Context, args []string) error {
	c := newCommon("whoami")
	if _, err := cli.Parse(c.fs, args); err != nil {
		return err
	}
	return c.withProfile(ctx, func(p *client.Profile) error {
		w, err := p.Whoami(ctx)
		if err != nil {
			return err
		}
		return c.print(w, func() {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "identity\t%s\nkey suite\t%s\ncertificate serial\t%s\ncertificate expires\t%s\nserver\t%s\nCA SHA-256\t%s\n",
				w.Identity, w.Suite, w.Serial, w.NotAfter.Format(time.RFC3339), w.Server, w.CASHA256)
			tw.Flush()
		})
	})
}

func cmdContacts(ctx context.Context, args []string) error {
	verb := "list"
	if len(args) > 0 && (args[0] == "add" || args[0] == "remove" || args[0] == "list") {
		verb, args = args[0], args[1:]
	}
	c := newCommon("contacts")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if (verb == "list") != (len(pos) == 0) || len(pos) > 1 {
		return cli.Usage("phonex contacts add|remove USER@DOMAIN | phonex contacts list [--json]")
	}
	return c.withProfile(ctx, func(p *client.Profile) error {
		switch verb {
		case "add":
			ct, err := p.AddContact(ctx, pos[0])
			if err != nil {
				return err
			}
			return c.print(ct, func() { fmt.Printf("added %s (%d devices)\n", ct.User, len(ct.Devices)) })
		case "remove":
			if err := p.RemoveContact(ctx, pos[0]); err != nil {
				return err
			}
			return c.print(map[string]string{"removed": pos[0]}, func() { fmt.Printf("removed %s\n", pos[0]) })
		}
		cs, err := p.Contacts(ctx)
		if err != nil {
			return err
		}
		return c.print(cs, func() {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CONTACT\tDEVICE\tSUITE\tKEY (SHA-256)")
			for _, ct := range cs {
				if len(ct.Devices) == 0 {
					fmt.Fprintf(tw, "%s\t-\t\t\n", ct.User)
				}
				for _, d := range ct.Devices {
					warn := ""
					if d.KeyChanged {
						warn = "  KEY CHANGED since first seen: verify with the contact"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s%s\n", ct.User, d.Name, d.Suite, d.KeySHA256[:16], warn)
				}
			}
			tw.Flush()
		})
	})
}

func cmdDevices(ctx context.Context, args []string) error {
	c := newCommon("devices")
	if _, err := cli.Parse(c.fs, args); err != nil {
		return err
	}
	return c.withProfile(ctx, func(p *client.Profile) error {
		ds, err := p.Devices(ctx)
		if err != nil {
			return err
		}
		return c.print(ds, func() {
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tSUITE\tSTATUS\tEXPIRES")
			for _, d := range ds {
				name := d.Name
				if d.Current {
					name += " (this device)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, d.Suite, d.Status, d.NotAfter.Format(time.RFC3339))
			}
			tw.Flush()
		})
	})
}

func cmdPasswd(ctx context.Context, args []string) error {
	c := newCommon("passwd")
	newFile := c.fs.String("new-password-file", "", "read the new password from this file (else PHONEX_NEW_PASSWORD or a prompt)")
	if _, err := cli.Parse(c.fs, args); err != nil {
		return err
	}
	p, old, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	var nu []byte
	if *newFile != "" {
		nu, err = readPasswordFile(*newFile)
	} else if v := os.Getenv("PHONEX_NEW_PASSWORD"); v != "" {
		nu = []byte(v)
	} else {
		nu, err = prompt("New password: ", true)
	}
	if err != nil {
		return err
	}
	if err := p.ChangePassword(ctx, old, nu, c.options()); err != nil {
		return err
	}
	return c.print(map[string]string{"status": "password changed"}, func() {
		fmt.Println("password changed; other devices keep opening with the password they last used until you run phonex passwd there")
	})
}

func cmdSend(ctx context.Context, args []string) error {
	c := newCommon("send")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return cli.Usage("phonex send USER@DOMAIN TEXT [--json]")
	}
	text := strings.Join(pos[1:], " ")
	return c.withProfile(ctx, func(p *client.Profile) error {
		id, err := p.Send(ctx, pos[0], text)
		if err != nil {
			if id != "" {
				return fmt.Errorf("message %s: %w", id, err)
			}
			return err
		}
		return c.print(map[string]string{"id": id, "to": pos[0], "state": client.StateSent}, func() {
			fmt.Printf("sent %s to %s\n", id, pos[0])
		})
	})
}

func cmdListen(ctx context.Context, args []string) error {
	c := newCommon("listen")
	dur := c.fs.Duration("for", 0, "stop after this long (default: until interrupted)")
	if _, err := cli.Parse(c.fs, args); err != nil {
		return err
	}
	return c.withProfile(ctx, func(p *client.Profile) error {
		if *dur > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, *dur)
			defer cancel()
		}
		if !*c.jsonOut && isTerminal(os.Stderr) {
			fmt.Fprintf(os.Stderr, "listening as %s (Ctrl-C to stop)\n", p.Device)
		}
		var mu sync.Mutex
		return p.Listen(ctx, func(e client.Event) {
			mu.Lock()
			defer mu.Unlock()
			if *c.jsonOut {
				cli.JSON(os.Stdout, e)
				return
			}
			ts := e.Time.Local().Format("15:04:05")
			switch e.Type {
			case "message":
				dir, who := "from "+e.From+"/"+e.FromDevice, ""
				if e.Outgoing {
					dir = "sent to " + e.Peer + " from your device " + e.FromDevice
				}
				if e.Insecure {
					who = " [NOT ENCRYPTED]"
				}
				fmt.Printf("%s %s %s%s: %s\n", ts, e.ID, dir, who, e.Text)
			case "delivered", "read":
				fmt.Printf("%s %s %s by %s\n", ts, e.ID, e.Type, e.Peer)
			case "sent":
				fmt.Printf("%s %s sent to %s\n", ts, e.ID, e.Peer)
			case "failed":
				fmt.Printf("%s %s to %s FAILED: %s\n", ts, e.ID, e.Peer, e.Error)
			default:
				fmt.Printf("%s %s: %s\n", ts, e.Type, e.Error)
			}
			os.Stdout.Sync()
		})
	})
}

func cmdInbox(ctx context.Context, args []string) error {
	c := newCommon("inbox")
	with := c.fs.String("with", "", "only the conversation with USER@DOMAIN")
	markRead := c.fs.Bool("read", false, "mark the shown messages from --with read and send read receipts")
	if _, err := cli.Parse(c.fs, args); err != nil {
		return err
	}
	return c.withProfile(ctx, func(p *client.Profile) error {
		es, err := p.Inbox(ctx, *with)
		if err != nil {
			return err
		}
		if *markRead && *with != "" {
			if _, err := p.MarkRead(ctx, *with); err != nil {
				return err
			}
		}
		return c.print(es, func() {
			for _, e := range es {
				arrow := "<-"
				if e.Direction == "out" {
					arrow = "->"
				}
				flag := ""
				if e.Insecure {
					flag = " [NOT ENCRYPTED]"
				}
				fmt.Printf("%s %s %s %s %-9s%s %s\n", e.Time.Local().Format("2006-01-02 15:04"), e.ID, arrow, e.Peer, e.State, flag, e.Text)
			}
		})
	})
}

func cmdRead(ctx context.Context, args []string) error {
	c := newCommon("read")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usage("phonex read USER@DOMAIN [--json]")
	}
	return c.withProfile(ctx, func(p *client.Profile) error {
		n, err := p.MarkRead(ctx, pos[0])
		if err != nil {
			return err
		}
		return c.print(map[string]any{"peer": pos[0], "marked_read": n}, func() { fmt.Printf("marked %d messages from %s read\n", n, pos[0]) })
	})
}

func cmdResend(ctx context.Context, args []string) error {
	c := newCommon("resend")
	pos, err := cli.Parse(c.fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Usage("phonex resend MESSAGE_ID")
	}
	return c.withProfile(ctx, func(p *client.Profile) error {
		if err := p.Resend(ctx, pos[0]); err != nil {
			return err
		}
		return c.print(map[string]string{"id": pos[0], "state": client.StateSent}, func() { fmt.Printf("sent %s\n", pos[0]) })
	})
}
