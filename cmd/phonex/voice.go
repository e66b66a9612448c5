package main

import (
	"context"
	"fmt"
	"io"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

func (a *app) cmdVoice(ctx context.Context, args []string) error {
	const syn = "phonex voice USER@DOMAIN --wav F.wav [--json]"
	c := a.newCommon("voice", syn)
	src := c.String("wav", "", "the recording to send (WAV, any rate and channel count)")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *src == "" {
		return cli.Misuse(syn, "voice takes an account and --wav FILE")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		s, err := d.SendVoice(ctx, pos[0], *src, c.fileProgress())
		for _, m := range s.Missing {
			fmt.Fprintf(a.stderr, "warning: no file slot left for %s: it must come online to refill; it does not get this message\n", m)
		}
		if err != nil {
			return err
		}
		if s.Waiting != "" {
			fmt.Fprintf(a.stderr, "waiting for %s: the message is on your node, which forwards it once that cluster can be reached\n", s.Waiting)
		}
		return c.print(s, func(out io.Writer) {
			fmt.Fprintln(out, s.ID)
		})
	})
}
