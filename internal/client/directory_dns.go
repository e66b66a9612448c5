package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/e164"
	"github.com/phonex/phonex/internal/ident"
)

// ErrNoSavedAnchor: a DNS lookup without an anchor, and none remembered.
var ErrNoSavedAnchor = errors.New("no trust anchor remembered in this profile; give the zone's DS or DNSKEY records once")

const kvDirAnchor = "dir-anchor" // the trust anchor of the last validated DNS lookup

// DirAnchor returns the trust anchor this profile remembered, if any.
func (p *Profile) DirAnchor(ctx context.Context) ([]byte, error) {
	v, ok, err := kvGet(ctx, p.db.db, kvDirAnchor)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNoSavedAnchor
	}
	return []byte(v), nil
}

// LookupDirectoryDNSWith is LookupDirectoryDNS with anchors as text (DS
// or DNSKEY records). Anchors given are used alone, and remembered (in the
// encrypted profile) once they validated an answer, so a mistyped anchor
// is never kept. Nil anchors use the home node's anchor (dnsanchor.go),
// together with any remembered. An empty server uses the DNS server the
// home node named.
func (p *Profile) LookupDirectoryDNSWith(ctx context.Context, query, server string, anchors []byte) ([]DirEntry, error) {
	if anchors != nil {
		rrs, err := dnsval.ParseAnchors(anchors)
		if err != nil {
			return nil, err
		}
		if server == "" {
			if a, ok, _ := p.nodeAnchor(ctx); ok {
				server = a.DNSAddr
			}
			if server == "" {
				return nil, ErrNoDNSServer
			}
		}
		es, err := p.LookupDirectoryDNS(ctx, query, server, rrs)
		if err == nil {
			err = kvPut(ctx, p.db.db, kvDirAnchor, string(anchors))
		}
		return es, err
	}
	var saved []dns.RR
	if b, err := p.DirAnchor(ctx); err == nil {
		if saved, err = dnsval.ParseAnchors(b); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, ErrNoSavedAnchor) {
		return nil, err
	}
	a, ok, err := p.nodeAnchor(ctx)
	if ok {
		return p.lookupWithNodeAnchor(ctx, query, server, a, saved)
	}
	if len(saved) == 0 {
		if err != nil {
			return nil, fmt.Errorf("%w (and the home node's could not be had: %w)", ErrNoSavedAnchor, err)
		}
		return nil, ErrNoSavedAnchor
	}
	if server == "" {
		return nil, ErrNoDNSServer
	}
	return p.LookupDirectoryDNS(ctx, query, server, saved)
}

// LookupDirectoryDNS finds a number (+E164) or a SIP address
// (user@domain) in a directory zone through server (an authoritative
// server or a resolver), validating every answer on this device from
// anchors (DNSSEC, never a resolver's AD bit), and compares the keys with
// this device's pins.
func (p *Profile) LookupDirectoryDNS(ctx context.Context, query, server string, anchors []dns.RR) ([]DirEntry, error) {
	r := &dnsval.Resolver{Server: server, Anchors: anchors}
	e := DirEntry{Source: "dns"}
	if strings.HasPrefix(strings.TrimSpace(query), "+") {
		n, err := e164.Parse(query)
		if err != nil {
			return nil, fmt.Errorf("number %q: %w", query, err)
		}
		aor, err := r.SIPAddress(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("lookup %s in DNS: %w", n, err)
		}
		e.Number, e.AOR = n, aor
	} else {
		a, err := ident.ParseAccount(strings.TrimPrefix(query, "sip:"))
		if err != nil {
			return nil, fmt.Errorf("lookup %q: want +E164 or user@domain: %w", query, err)
		}
		e.AOR = a.String()
	}
	e.SIPAddress = "sip:" + e.AOR
	certs, err := r.UserKeys(ctx, e.AOR)
	if err != nil && !errors.Is(err, dnsval.ErrNoData) && !errors.Is(err, dnsval.ErrNXDomain) {
		return nil, fmt.Errorf("keys of %s in DNS: %w", e.AOR, err)
	}
	if e.Number == "" && len(certs) == 0 {
		return nil, fmt.Errorf("lookup %s in DNS: %w", e.AOR, err)
	}
	var keys []api.DirKey
	for _, c := range certs {
		// SMIMEA carries no device name; the certificate names it.
		name := "?"
		if id, err := ident.FromURIs(c.URIs); err == nil && id.Account.String() == e.AOR {
			name = id.Name
		}
		keys = append(keys, api.DirKey{Device: name, Cert: c.Raw})
	}
	if e.Keys, err = p.dirKeys(ctx, e.AOR, keys); err != nil {
		return nil, err
	}
	return []DirEntry{e}, nil
}
