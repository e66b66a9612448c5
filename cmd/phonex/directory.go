package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

const directorySyn = `phonex directory publish --number +E164 [--code CODE | --no-wait] [--json]
  phonex directory lookup +E164|USER@DOMAIN [--dns [HOST:PORT] [--anchor FILE]] [--json]
  phonex directory discover --file numbers.txt [--json]
  phonex directory notices [--json]
  phonex directory cancel REPLACEMENT [--json]
  phonex directory anchor [--json]`

var directoryVerbs = []string{"publish", "lookup", "discover", "notices", "cancel", "anchor"}

func (a *app) cmdDirectory(ctx context.Context, args []string) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return cli.Help("usage: " + directorySyn + "\n")
		}
		return cli.Misuse(directorySyn, "directory needs a command: %s", strings.Join(directoryVerbs, ", "))
	}
	verb, args := args[0], args[1:]
	switch verb {
	case "publish":
		return a.dirPublish(ctx, args)
	case "lookup":
		return a.dirLookup(ctx, args)
	case "discover":
		return a.dirDiscover(ctx, args)
	case "notices":
		return a.dirNotices(ctx, args)
	case "cancel":
		return a.dirCancel(ctx, args)
	case "anchor":
		return a.dirAnchor(ctx, args)
	}
	return cli.UnknownCommand(prog+" directory", verb, directoryVerbs, directorySyn)
}

// progress reports a step on a terminal, never into --json output.
func (c *common) progress(step string) {
	if isTerminal(c.a.stderr) && !*c.jsonOut {
		fmt.Fprintf(c.a.stderr, "… %s\n", step)
	}
}

func (a *app) dirPublish(ctx context.Context, args []string) error {
	const syn = "phonex directory publish --number +E164 [--code CODE | --no-wait] [--json]"
	c := a.newCommon("directory publish", syn)
	number := c.String("number", "", "the number to claim and publish, in E.164 form: + and 8-15 digits (required)")
	code := c.String("code", "", "answer a claim begun with --no-wait with the code shown on one of the account's devices")
	noWait := c.Bool("no-wait", false, "begin the claim and exit; the code goes to the account's devices ('phonex directory notices')")
	wait := c.Duration("wait", 0, "give up waiting for the code after this long (default: the claim's life)")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if err := c.Require("number"); err != nil {
		return err
	}
	if *code != "" && *noWait {
		return cli.Misuse(syn, "--code answers a claim; --no-wait begins one: give one of them")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		var pub sdk.Publication
		var err error
		switch {
		case *noWait:
			cl, err := d.BeginNumberClaim(ctx, *number)
			if err != nil {
				return err
			}
			return c.print(cl, func(out io.Writer) {
				fmt.Fprintf(out, "code for %s sent to %s of your account (valid until %s);\nthen run: phonex directory publish --number %s --code CODE\n",
					cl.Number, cli.Plural(cl.Devices, "device", "devices"), cl.Expires.Local().Format(time.TimeOnly), cl.Number)
			})
		case *code != "":
			pub, err = d.ProveNumberClaim(ctx, *number, *code)
		default:
			wctx := ctx
			if *wait > 0 {
				var cancel context.CancelFunc
				wctx, cancel = context.WithTimeout(ctx, *wait)
				defer cancel()
			}
			pub, err = d.PublishNumber(wctx, *number, c.progress)
		}
		if err != nil {
			return err
		}
		return c.print(pub, func(out io.Writer) {
			if pub.State == sdk.PublicationPending {
				p := pub.Entry.Pending
				fmt.Fprintf(out, "key replacement for %s requested: this device's key is not published yet.\n", pub.Entry.Number)
				fmt.Fprintf(out, "the account's other devices were told; unless one cancels it (replacement %s),\nthe new keys are published at %s\n", p.Replacement, p.Effective.Local().Format(time.RFC3339))
				return
			}
			fmt.Fprintf(out, "published %s → %s with %s\n", pub.Entry.Number, pub.Entry.SIPAddress, cli.Plural(len(pub.Entry.Keys), "device key", "device keys"))
		})
	})
}

func printEntry(out io.Writer, e sdk.DirectoryEntry) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if e.Number != "" {
		fmt.Fprintf(tw, "number\t%s\n", e.Number)
	}
	fmt.Fprintf(tw, "SIP address\t%s\n", e.SIPAddress)
	if e.Source == "dns" {
		fmt.Fprintf(tw, "source\tDNS, validated on this device (DNSSEC)\n")
	} else {
		fmt.Fprintf(tw, "published\t%s\n", e.Published.Local().Format(time.RFC3339))
	}
	keys := func(label string, ks []sdk.DirectoryKey) {
		for _, k := range ks {
			ca := "not checked (other cluster)"
			switch {
			case k.CAVerified:
				ca = "verified by the CA"
			case k.Problem != "":
				ca = "REFUSED: " + k.Problem
			}
			fmt.Fprintf(tw, "%s\t%s  %s  %s, pin: %s\n", label, k.Device, k.KeySHA256, ca, matchText(k.Match))
		}
	}
	keys("key", e.Keys)
	if e.Pending != nil {
		fmt.Fprintf(tw, "replacement\t%s pending until %s\n", e.Pending.Replacement, e.Pending.Effective.Local().Format(time.RFC3339))
		keys("new key", e.Pending.Keys)
	}
	tw.Flush()
}

func matchText(m string) string {
	switch m {
	case sdk.KeyPinned:
		return "matches what this device pinned"
	case sdk.KeyMismatch:
		return "DIFFERS from what this device pinned"
	}
	return "nothing pinned"
}

func (a *app) dirLookup(ctx context.Context, args []string) error {
	const syn = "phonex directory lookup +E164|USER@DOMAIN [--dns [HOST:PORT] [--anchor FILE]] [--json]"
	c := a.newCommon("directory lookup", syn)
	server := c.String("dns", "", "look up in the directory zone through this DNS server (authoritative or resolver), validated here with DNSSEC; --dns alone: the server the home node named")
	anchor := c.String("anchor", "", "the zone's trust anchor: DS or DNSKEY records, as 'phonexd dns ds' prints (with --dns; remembered in the profile once it validated an answer); default: the DS records the home node gave")
	args, viaDNS := dnsFlagArgs(args)
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Misuse(syn, "directory lookup takes one number (+E164) or SIP address (USER@DOMAIN)")
	}
	if *server == dnsFromNode {
		*server = ""
	}
	if !viaDNS && *anchor != "" {
		return cli.Misuse(syn, "--anchor goes with --dns: it validates the zone's answers")
	}
	var anchors []byte
	if *anchor != "" {
		if anchors, err = os.ReadFile(*anchor); err != nil {
			return err
		}
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		var es []sdk.DirectoryEntry
		var err error
		if viaDNS {
			es, err = d.LookupDNS(ctx, pos[0], *server, anchors)
		} else {
			es, err = d.Lookup(ctx, pos[0])
		}
		if err != nil {
			return err
		}
		return c.print(map[string]any{"entries": es}, func(out io.Writer) {
			for i, e := range es {
				if i > 0 {
					fmt.Fprintln(out)
				}
				printEntry(out, e)
			}
		})
	})
}

func (a *app) dirDiscover(ctx context.Context, args []string) error {
	const syn = "phonex directory discover --file numbers.txt [--json]"
	c := a.newCommon("directory discover", syn)
	file := c.String("file", "", "numbers in E.164 form, one a line; '-' reads standard input (required)")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	if err := c.Require("file"); err != nil {
		return err
	}
	var r io.Reader = a.stdin
	if *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	var numbers []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			numbers = append(numbers, l)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", *file, err)
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		res, err := d.Discover(ctx, numbers, func(done, total int) {
			if total > 1000 {
				c.progress(fmt.Sprintf("%d of %d numbers asked", done, total))
			}
		})
		if err != nil {
			return err
		}
		return c.print(res, func(out io.Writer) {
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			for _, e := range res.Found {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", e.Number, e.SIPAddress, cli.Plural(len(e.Keys), "key", "keys"))
			}
			tw.Flush()
			fmt.Fprintf(out, "%d found, %d not published", len(res.Found), len(res.NotFound))
			if len(res.Invalid) > 0 {
				fmt.Fprintf(out, ", %d lines not in E.164 form (+ and 8-15 digits)", len(res.Invalid))
			}
			fmt.Fprintln(out)
		})
	})
}

func (a *app) dirNotices(ctx context.Context, args []string) error {
	const syn = "phonex directory notices [--json]"
	c := a.newCommon("directory notices", syn)
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(c, pos); err != nil {
		return err
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		ns, err := d.DirectoryNotices(ctx)
		if err != nil {
			return err
		}
		return c.print(map[string]any{"notices": ns}, func(out io.Writer) {
			if len(ns) == 0 {
				fmt.Fprintln(out, "no directory notices")
			}
			for _, n := range ns {
				switch n.Kind {
				case "claim_code":
					fmt.Fprintf(out, "code %s for the claim of %s from device %s\n", n.Code, n.Number, n.FromDevice)
				case "replacement":
					eff := ""
					if n.Effective != nil {
						eff = n.Effective.Local().Format(time.RFC3339)
					}
					fmt.Fprintf(out, "device %s asked to replace the published keys of %s at %s;\nif that was not you, run: phonex directory cancel %s\n", n.FromDevice, n.Number, eff, n.Ref)
				default:
					fmt.Fprintf(out, "%s: %s\n", n.Kind, n.Number)
				}
			}
		})
	})
}

func (a *app) dirCancel(ctx context.Context, args []string) error {
	const syn = "phonex directory cancel REPLACEMENT [--json]"
	c := a.newCommon("directory cancel", syn)
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Misuse(syn, "directory cancel takes the replacement named in the notice")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		if err := d.CancelReplacement(ctx, pos[0]); err != nil {
			return err
		}
		return c.print(map[string]string{"cancelled": pos[0]}, func(out io.Writer) { fmt.Fprintf(out, "cancelled replacement %s\n", pos[0]) })
	})
}

// dnsFromNode stands for --dns without a value: the DNS server the home
// node named.
const dnsFromNode = "\x00node"

// dnsFlagArgs lets --dns go without a value: "--dns" followed by nothing,
// another flag or the query (+E164 or USER@DOMAIN) means the node's own
// server. It reports whether --dns was given at all.
func dnsFlagArgs(args []string) ([]string, bool) {
	out := make([]string, 0, len(args))
	given := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "dns" {
			out = append(out, a)
			continue
		}
		given = true
		if hasValue {
			out = append(out, a)
			continue
		}
		if i+1 < len(args) && isServerArg(args[i+1]) {
			out = append(out, "--dns="+args[i+1])
			i++
			continue
		}
		out = append(out, "--dns="+dnsFromNode)
	}
	return out, given
}

// isServerArg tells a HOST:PORT from a flag or a query.
func isServerArg(s string) bool {
	return s != "" && !strings.HasPrefix(s, "-") && !strings.HasPrefix(s, "+") && !strings.Contains(s, "@")
}

// dirAnchor asks the home node for its zone's trust anchor again and shows
// it: what 'lookup --dns' validates from.
func (a *app) dirAnchor(ctx context.Context, args []string) error {
	const syn = "phonex directory anchor [--json]"
	c := a.newCommon("directory anchor", syn)
	return show(ctx, c, args, (*sdk.Device).DirectoryAnchor, func(out io.Writer, an sdk.DirectoryAnchor) {
		fmt.Fprintf(out, "zone %s, trust anchor from the home node (kept in the profile):\n", an.Zone)
		for _, ds := range an.DS {
			fmt.Fprintln(out, "  "+ds)
		}
		if an.DNSAddr != "" {
			fmt.Fprintf(out, "DNS server: %s ('phonex directory lookup --dns' asks it)\n", an.DNSAddr)
		} else {
			fmt.Fprintln(out, "the node named no DNS server: give 'lookup --dns HOST:PORT'")
		}
	})
}
