package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// relayFetchTimeout bounds the credential request a call makes before
// gathering: a slow answer must not hold the call up for long, and the
// call can still go on with host candidates.
const relayFetchTimeout = 3 * time.Second

// UseClusterRelay gives a call made with this device's profile the home
// cluster's STUN and TURN servers with fresh credentials (fetched once for
// the call), so ICE gathers server-reflexive and relayed candidates besides
// the host ones (RFC 8445 §5.1.1) and two devices behind NATs can connect.
// It leaves o alone when o.ICEServers names servers or ICE is off.
//
// When the cluster runs no relay (or cannot be asked in time) the call
// goes on with host candidates only and o.OnEvent gets one CallWarning
// saying so; with o.Relay the call cannot, and it fails with
// ErrRelayUnavailable. Device.Call and Device.Answer call it themselves;
// a direct call (Phone.Dial, Phone.Accept) made with a profile may call it
// first to get the same candidates.
func (d *Device) UseClusterRelay(ctx context.Context, o *CallOptions) error {
	if o.NoICE || len(o.ICEServers.URLs) > 0 {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, relayFetchTimeout)
	defer cancel()
	rc, err := d.RelayCredentials(fctx)
	if err == nil {
		o.ICEServers = rc.ICEServers()
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	noRelay := errors.Is(err, ErrNoRelay)
	if o.Relay {
		if noRelay {
			return fmt.Errorf("%w: the cluster runs no STUN/TURN relay", ErrRelayUnavailable)
		}
		return fmt.Errorf("%w: %w", ErrRelayUnavailable, err)
	}
	d.p.Logger().Debug("call without the cluster's relay", "err", err)
	reason := "the cluster runs no STUN/TURN relay: this call offers this device's own addresses only, so it connects only where the peer can reach them (not across two NATs)"
	if !noRelay {
		reason = "the cluster's relay credentials could not be fetched (" + err.Error() + "): this call offers this device's own addresses only"
	}
	if o.OnEvent != nil {
		o.OnEvent(CallEvent{Type: CallWarning, Time: time.Now(), Reason: reason})
	}
	return nil
}
