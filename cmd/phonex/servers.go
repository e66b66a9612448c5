package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

const serversSynopsis = "phonex servers [--set HOST:PORT[,HOST:PORT...]] [--json]"

// cmdServers shows or replaces the cluster's API addresses in the profile:
// the device moves to the next when the one in use is down.
func (a *app) cmdServers(ctx context.Context, args []string) error {
	c := a.newCommon("servers", serversSynopsis)
	set := c.String("set", "", "replace the list: API addresses of the cluster's nodes, comma-separated, in order of preference")
	pos, err := c.Parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return cli.Misuse(serversSynopsis, "servers takes no arguments (got %d)", len(pos))
	}
	if !sdk.Exists(*c.profile) {
		return fmt.Errorf("%w: %s (enroll first with phonex enroll, or give --profile)", sdk.ErrNoProfile, *c.profile)
	}
	if *set != "" {
		if err := sdk.SetServers(*c.profile, strings.Split(*set, ",")); err != nil {
			return err
		}
	}
	list, err := sdk.Servers(*c.profile)
	if err != nil {
		return err
	}
	return c.print(map[string]any{"servers": list}, func(w io.Writer) {
		for _, s := range list {
			fmt.Fprintln(w, s)
		}
	})
}
