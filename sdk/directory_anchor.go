package sdk

import (
	"context"

	"github.com/phonex/phonex/internal/client"
)

// DirectoryAnchor is the trust anchor of the home cluster's signed
// directory zone, as the home node gave it over mutual TLS: the zone's DS
// records (two during a KSK rollover) and the node's DNS server, when it
// serves the zone on a specific address.
type DirectoryAnchor = client.DirAnchor

// Errors of the directory zone's anchor, for errors.Is.
var (
	ErrNoZone      = client.ErrNoZone      // the home cluster has no signed zone
	ErrNoDNSServer = client.ErrNoDNSServer // LookupDNS without a server, and the node named none
)

// DirectoryAnchor asks the home node for its directory zone's trust anchor
// and keeps it in the profile, where LookupDNS with nil anchors finds it.
// Enrollment does this already, and LookupDNS asks again when the anchor
// in hand no longer validates the zone (a KSK rollover) or is a day old.
func (d *Device) DirectoryAnchor(ctx context.Context) (DirectoryAnchor, error) {
	return d.p.RefreshDirAnchor(ctx)
}
