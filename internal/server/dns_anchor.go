package server

import (
	"context"
	"net/http"
	"net/netip"

	"github.com/phonex/phonex/internal/api"
)

// The directory zone's trust anchor for devices: an enrolled device asks
// for it over mutual TLS, so the DS records are as trustworthy as the
// node whose CA the device pinned at enrollment. The device asks at
// enrollment and again when its copy fails to validate the zone (after a
// KSK rollover), so it needs no DS file from the operator.

func (n *Node) dnsAnchorRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+api.PathDirAnchor, n.authed(n.dirAnchor))
}

func (n *Node) dirAnchor(ctx context.Context, r *http.Request, c *caller) (any, error) {
	a := api.DirAnchor{Zone: n.cfg.ZoneName()}
	if z := n.DirectoryZone(); z != nil {
		for _, ds := range z.DSSet() {
			a.DS = append(a.DS, ds.String())
		}
		a.DNSAddr = n.dnsServerAddr()
		return a, nil
	}
	// No zone served here: the keys may still sign a zone exported to
	// other servers ('phonexd dns export').
	dss, err := ZoneDSSet(n.cfg)
	if err != nil {
		return nil, errorf(http.StatusNotFound, api.CodeNoZone, "this cluster has no signed directory zone")
	}
	for _, ds := range dss {
		a.DS = append(a.DS, ds.String())
	}
	return a, nil
}

// dnsServerAddr is the address devices can query the zone at: the bound
// address of dns_addr, or "" when that is on all interfaces (no one
// address to give).
func (n *Node) dnsServerAddr() string {
	n.dir.mu.Lock()
	pc := n.dir.pc
	n.dir.mu.Unlock()
	if pc == nil {
		return ""
	}
	ap, err := netip.ParseAddrPort(pc.LocalAddr().String())
	if err != nil || ap.Addr().IsUnspecified() {
		return ""
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}
