package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/cli"
	"github.com/phonex/phonex/sdk"
)

const relayCredentialsSynopsis = "phonex relay-credentials [--json]   (STUN/TURN URIs and short-lived credentials from the home cluster, for debugging)"

// cmdRelayCredentials shows the relay credentials a call would use, so that
// a relay can be tried with any TURN client (turnutils_uclient -u USER -w PASS).
func (a *app) cmdRelayCredentials(ctx context.Context, args []string) error {
	c := a.newCommon("relay-credentials", relayCredentialsSynopsis)
	return show(ctx, c, args, (*sdk.Device).RelayCredentials, func(out io.Writer, rc sdk.RelayCredentials) {
		fmt.Fprintf(out, "TURN:     %s\nSTUN:     %s\nusername: %s\npassword: %s\nexpires:  %s (in %s)\n",
			strings.Join(rc.URIs, " "), strings.Join(rc.STUN, " "), rc.Username, rc.Password,
			rc.Expires.Format(time.RFC3339), time.Until(rc.Expires).Round(time.Second))
	})
}

// clusterRelay gives a --relay call without --ice-server the relay of the
// profile's cluster, with fresh credentials.
func clusterRelay(ctx context.Context, usage string, dev *sdk.Device, o *sdk.CallOptions) error {
	if !o.Relay || len(o.ICEServers.URLs) > 0 {
		return nil
	}
	if dev == nil {
		return cli.Misuse(usage, "--relay needs a TURN server: give --ice-server turn:HOST:PORT with --turn-user, or a profile (its cluster's relay)")
	}
	rc, err := dev.RelayCredentials(ctx)
	if err != nil {
		return err
	}
	o.ICEServers = rc.ICEServers()
	return nil
}
