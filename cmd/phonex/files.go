package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

// progressEvent is one line of --json progress.
type progressEvent struct {
	Type  string `json:"type"` // progress
	Phase string `json:"phase"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"`
}

// fileProgress reports a transfer: with --json a line per step of at least
// 1% (or phase change), on a terminal a line redrawn with bytes, rate and
// time left, else nothing.
func (c *common) fileProgress() sdk.FileProgress {
	tty := isTerminal(c.a.stderr)
	var phase string
	var start time.Time
	var startDone, lastDone int64
	var lastDraw time.Time
	return func(ph string, done, total int64) {
		now := time.Now()
		if ph != phase {
			if phase != "" && tty && !*c.jsonOut {
				fmt.Fprintln(c.a.stderr)
			}
			phase, start, startDone, lastDone, lastDraw = ph, now, done, -1, time.Time{}
		}
		switch {
		case *c.jsonOut:
			if lastDone >= 0 && done != total && (done-lastDone)*100 < total {
				return
			}
			lastDone = done
			cli.JSON(c.a.stdout, progressEvent{Type: "progress", Phase: ph, Done: done, Total: total})
		case tty:
			if done != total && now.Sub(lastDraw) < 200*time.Millisecond {
				return
			}
			lastDraw = now
			rate := float64(done-startDone) / max(now.Sub(start).Seconds(), 1e-3)
			left := "?"
			if rate > 0 {
				left = (time.Duration(float64(total-done)/rate) * time.Second / time.Second).Round(time.Second).String()
			}
			fmt.Fprintf(c.a.stderr, "\r%-8s %s / %s  %s/s  %s left   ", ph, bytesText(done), bytesText(total), bytesText(int64(rate)), left)
			if done == total {
				fmt.Fprintln(c.a.stderr)
				phase = ""
			}
		}
	}
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (a *app) cmdSendFile(ctx context.Context, args []string) error {
	const syn = "phonex send-file USER@DOMAIN PATH [--json]"
	c := a.newCommon("send-file", syn)
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return cli.Misuse(syn, "send-file takes an account and a file (got %d arguments)", len(pos))
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		s, err := d.SendFile(ctx, pos[0], pos[1], c.fileProgress())
		for _, m := range s.Missing {
			fmt.Fprintf(a.stderr, "warning: no file slot left for %s: it must come online to refill; it does not get this file\n", m)
		}
		if err != nil {
			return err
		}
		if s.Waiting != "" {
			fmt.Fprintf(a.stderr, "waiting for %s: the file is on your node, which forwards it once that cluster can be reached\n", s.Waiting)
		}
		return c.print(s, func(out io.Writer) {
			fmt.Fprintln(out, s.ID)
		})
	})
}

func (a *app) cmdFiles(ctx context.Context, args []string) error {
	c := a.newCommon("files", "phonex files [--json]")
	list := func(d *sdk.Device, ctx context.Context) ([]sdk.FileEntry, error) {
		fs, err := d.FileTransfers(ctx)
		if fs == nil && err == nil {
			fs = []sdk.FileEntry{} // [] in --json, not null
		}
		return fs, err
	}
	return show(ctx, c, args, list, func(out io.Writer, fs []sdk.FileEntry) {
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tDIR\tPEER\tNAME\tSIZE\tSTATE\tEXPIRES")
		for _, f := range fs {
			name := f.Name
			if f.VoiceMS > 0 {
				name = fmt.Sprintf("voice message %.1f s (%s)", float64(f.VoiceMS)/1000, f.Name)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.ID, f.Direction, f.Peer, name, bytesText(f.Size), f.State, f.Expires.Format(time.RFC3339))
		}
		tw.Flush()
	})
}

func (a *app) cmdGet(ctx context.Context, args []string) error {
	const syn = "phonex get ID [-o PATH] [--wav] [--json]"
	c := a.newCommon("get", syn)
	dst := c.String("o", "", "where to write the file (default: its name, in the current directory)")
	asWAV := c.Bool("wav", false, "a voice message: write it decoded as WAV")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cli.Misuse(syn, "get takes one file id (see phonex files)")
	}
	return c.withDevice(ctx, func(d *sdk.Device) error {
		get := d.GetFile
		if *asWAV {
			get = d.GetVoiceWAV
		}
		r, err := get(ctx, pos[0], *dst, c.fileProgress())
		if err != nil {
			return err
		}
		return c.print(r, func(out io.Writer) {
			fmt.Fprintf(out, "%s (%s, %s) from %s: %s\n", r.Name, bytesText(r.Size), r.Type, r.Sender, r.Path)
		})
	})
}
