package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/dnsval"
)

// The home cluster's zone anchor: the node hands its directory zone's DS
// records (and its DNS address) to the device over mutual TLS, the channel
// authenticated by the CA this device pinned at enrollment. The device
// keeps them in its encrypted database and asks again when they no longer
// validate the zone (a KSK rollover) or are older than anchorMaxAge.

const kvDirNodeAnchor = "dir-node-anchor"

// anchorMaxAge bounds how long a node-given anchor is used without asking
// the node again: a KSK rollover keeps the old DS valid for days, so a
// daily refresh follows it before the old key goes.
const anchorMaxAge = 24 * time.Hour

// ErrNoZone: the home cluster publishes no signed directory zone.
var ErrNoZone = errors.New("the home cluster has no signed directory zone")

// ErrNoDNSServer: a DNS lookup with no server given, and the node named none.
var ErrNoDNSServer = errors.New("no DNS server given and the home node serves none on a specific address; give --dns HOST:PORT")

// DirAnchor is the directory zone's trust anchor as the home node gave it.
type DirAnchor struct {
	Zone    string    `json:"zone"`
	DS      []string  `json:"ds"`                 // DS records, master file syntax
	DNSAddr string    `json:"dns_addr,omitempty"` // the node's DNS server, if it gave one
	Fetched time.Time `json:"fetched"`
}

// records parses the DS records, refusing anything but DS records of the
// zone with a SHA-256 or SHA-384 digest.
func (a DirAnchor) records() ([]dns.RR, error) {
	zone := dns.CanonicalName(a.Zone)
	if _, ok := dns.IsDomainName(zone); !ok || a.Zone == "" {
		return nil, fmt.Errorf("directory anchor: zone %q is not a domain name", a.Zone)
	}
	var out []dns.RR
	for _, s := range a.DS {
		rr, err := dns.NewRR(s)
		if err != nil {
			return nil, fmt.Errorf("directory anchor: %w", err)
		}
		ds, ok := rr.(*dns.DS)
		if !ok || dns.CanonicalName(ds.Hdr.Name) != zone {
			return nil, fmt.Errorf("directory anchor: %q is not a DS record of %s", s, zone)
		}
		if ds.DigestType != dns.SHA256 && ds.DigestType != dns.SHA384 {
			return nil, fmt.Errorf("directory anchor: DS digest type %d (want SHA-256 or SHA-384)", ds.DigestType)
		}
		out = append(out, ds)
	}
	if len(out) == 0 {
		return nil, dnsval.ErrNoAnchors
	}
	return out, nil
}

// RefreshDirAnchor asks the home node for its directory zone's trust
// anchor and keeps it in the profile.
func (p *Profile) RefreshDirAnchor(ctx context.Context) (DirAnchor, error) {
	var res api.DirAnchor
	if err := p.c.call(ctx, "GET", api.PathDirAnchor, nil, &res); err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && ae.Code == api.CodeNoZone {
			return DirAnchor{}, ErrNoZone
		}
		return DirAnchor{}, fmt.Errorf("directory anchor: %w", err)
	}
	a := DirAnchor{Zone: dns.CanonicalName(res.Zone), DS: res.DS, DNSAddr: res.DNSAddr, Fetched: p.now()}
	if _, err := a.records(); err != nil {
		return DirAnchor{}, err
	}
	b, _ := json.Marshal(a)
	if err := kvPut(ctx, p.db.db, kvDirNodeAnchor, string(b)); err != nil {
		return DirAnchor{}, err
	}
	return a, nil
}

// NodeDirAnchor is the anchor the home node gave last, if any.
func (p *Profile) NodeDirAnchor(ctx context.Context) (DirAnchor, bool, error) {
	v, ok, err := kvGet(ctx, p.db.db, kvDirNodeAnchor)
	if err != nil || !ok {
		return DirAnchor{}, false, err
	}
	var a DirAnchor
	if err := json.Unmarshal([]byte(v), &a); err != nil {
		return DirAnchor{}, false, fmt.Errorf("directory anchor in the profile: %w", err)
	}
	return a, true, nil
}

// nodeAnchor returns the node-given anchor, asking the node when there is
// none yet or it is older than anchorMaxAge; a node that cannot be reached
// leaves the copy in hand.
func (p *Profile) nodeAnchor(ctx context.Context) (DirAnchor, bool, error) {
	a, ok, err := p.NodeDirAnchor(ctx)
	if err != nil {
		return a, false, err
	}
	if ok && p.now().Sub(a.Fetched) < anchorMaxAge {
		return a, true, nil
	}
	fresh, ferr := p.RefreshDirAnchor(ctx)
	switch {
	case ferr == nil:
		return fresh, true, nil
	case ok:
		p.log.Warn("directory anchor not refreshed; using the one in the profile", "err", ferr)
		return a, true, nil
	case errors.Is(ferr, ErrNoZone):
		return a, false, nil
	}
	return a, false, ferr
}

// lookupWithNodeAnchor runs a DNS lookup with the node-given anchor (and
// any remembered by hand) and, when the answer does not validate, asks the
// node for its anchor again and retries once if it changed: the zone may
// have rolled its KSK.
func (p *Profile) lookupWithNodeAnchor(ctx context.Context, query, server string, a DirAnchor, extra []dns.RR) ([]DirEntry, error) {
	lookup := func(a DirAnchor) ([]DirEntry, error) {
		rrs, err := a.records()
		if err != nil {
			return nil, err
		}
		srv := server
		if srv == "" {
			srv = a.DNSAddr
		}
		if srv == "" {
			return nil, ErrNoDNSServer
		}
		return p.LookupDirectoryDNS(ctx, query, srv, append(rrs, extra...))
	}
	es, err := lookup(a)
	if err == nil || !(errors.Is(err, dnsval.ErrBogus) || errors.Is(err, ErrNoDNSServer)) {
		return es, err
	}
	fresh, ferr := p.RefreshDirAnchor(ctx)
	if ferr != nil || (strings.Join(fresh.DS, "\n") == strings.Join(a.DS, "\n") && fresh.DNSAddr == a.DNSAddr) {
		return es, err
	}
	return lookup(fresh)
}

// takeDirAnchor keeps the home zone's anchor at enrollment; a cluster
// without a zone, or a failure, only means a later lookup asks again.
func (p *Profile) takeDirAnchor(ctx context.Context) {
	if _, err := p.RefreshDirAnchor(ctx); err != nil && !errors.Is(err, ErrNoZone) {
		p.log.Warn("directory anchor not fetched yet; a DNS lookup will ask again", "err", err)
	}
}
