package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

var states = []string{sdk.PresenceOnline, sdk.PresenceAway, sdk.PresenceBusy, sdk.PresenceDND, sdk.PresenceInvisible}

const presenceSyn = "phonex presence set online|away|busy|dnd|invisible [--note TEXT] [--json] | phonex presence [--json]"

// cmdPresence is 'phonex presence': the state chosen here and the
// account's devices as contacts see them, or 'presence set' to choose.
func (a *app) cmdPresence(ctx context.Context, args []string) error {
	set := len(args) > 0 && args[0] == "set"
	if set {
		args = args[1:]
	}
	c := a.newCommon("presence", presenceSyn)
	note := c.String("note", "", "a short note shown with the state (set)")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	switch {
	case set && (len(pos) != 1 || !slices.Contains(states, strings.ToLower(pos[0]))):
		return cli.Misuse(presenceSyn, "presence set takes one state: online, away, busy, dnd or invisible")
	case !set && len(pos) > 0:
		if s := cli.Suggest(pos[0], []string{"set"}); s != "" {
			return cli.Misuse(presenceSyn, "unknown command \"presence %s\" (did you mean \"presence %s\"?)", pos[0], s)
		}
		return cli.Misuse(presenceSyn, "unexpected argument %q", pos[0])
	case !set && c.IsSet("note"):
		return cli.Misuse(presenceSyn, "--note goes with presence set")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		if set {
			if err := d.SetPresence(ctx, pos[0], *note); err != nil {
				return err
			}
			v := map[string]string{"state": strings.ToLower(pos[0]), "note": *note}
			return c.print(v, func(out io.Writer) {
				fmt.Fprintf(out, "presence set to %s%s; a running 'phonex listen' publishes it\n", v["state"], noteText(*note))
			})
		}
		p, err := d.Presence(ctx)
		if err != nil {
			return err
		}
		return c.print(p, func(out io.Writer) {
			fmt.Fprintf(out, "chosen here: %s%s\n", p.State, noteText(p.Note))
			if len(p.Devices) == 0 {
				fmt.Fprintln(out, "no device of this account is online ('phonex listen' keeps a device online)")
				return
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DEVICE\tSTATE\tSINCE\tNOTE")
			for _, dv := range p.Devices {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", dv.Name, dv.State, since(dv.Since), dv.Note)
			}
			tw.Flush()
		})
	})
}

func noteText(n string) string {
	if n == "" {
		return ""
	}
	return fmt.Sprintf(" (%q)", n)
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// presenceText is a contact's presence in one column.
func presenceText(p *sdk.PresenceInfo) string {
	if p == nil {
		return "?"
	}
	s := p.State
	if p.Note != "" {
		s += fmt.Sprintf(" %q", p.Note)
	}
	if p.State != sdk.PresenceOffline {
		s += " since " + since(p.Since) + " on " + strings.Join(p.Devices, ",")
	}
	return s
}

// printPresence is the presence table under 'contacts'.
func printPresence(out io.Writer, cs []contactRow) {
	if len(cs) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTACT\tPRESENCE")
	for _, ct := range cs {
		fmt.Fprintf(tw, "%s\t%s\n", ct.User, presenceText(ct.Presence))
	}
	tw.Flush()
}

// contactRow is a contact with its presence, as 'contacts' prints it.
type contactRow struct {
	sdk.Contact
	Presence *sdk.PresenceInfo `json:"presence,omitempty"`
}

// withPresence adds each contact's presence; without the cluster's SIP
// service the list is still shown, its presence unknown.
func (c *common) withPresence(ctx context.Context, d *sdk.Device, cs []sdk.Contact) []contactRow {
	out := make([]contactRow, len(cs))
	users := make([]string, len(cs))
	for i, ct := range cs {
		out[i].Contact = ct
		users[i] = ct.User
	}
	ps, err := d.PresenceOf(ctx, users...)
	if err != nil {
		fmt.Fprintf(c.a.stderr, "%s: presence unknown: %v\n", prog, err)
		return out
	}
	for i := range out {
		if p, ok := ps[out[i].User]; ok {
			out[i].Presence = &p
		}
	}
	return out
}
