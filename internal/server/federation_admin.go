package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/store"
)

// PeerInfo is a federation peer as the operator sees it.
type PeerInfo struct {
	Domain      string    `json:"domain"`
	CASHA256    string    `json:"ca_sha256"`
	API         string    `json:"api"`
	SIP         string    `json:"sip"`
	Presented   string    `json:"presented_ca_sha256,omitempty"` // a refused CA the peer's domain presented
	PresentedAt time.Time `json:"presented_at,omitzero"`
	Queued      int64     `json:"queued_messages"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	FailedAt    time.Time `json:"failed_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	Added       time.Time `json:"added"`
}

func peerInfo(p store.Peer) PeerInfo {
	return PeerInfo{Domain: p.Domain, CASHA256: p.CASHA256, API: p.API, SIP: p.SIP, Presented: p.Presented, PresentedAt: p.PresentedAt,
		Queued: p.Queued, DeliveredAt: p.DeliveredAt, FailedAt: p.FailedAt, LastError: p.LastError, Added: p.Added}
}

// ErrOwnDomain refuses a peer named like this cluster.
var ErrOwnDomain = errors.New("a cluster cannot federate with its own domain")

func checkHostPort(what, v string) error {
	h, port, err := net.SplitHostPort(v)
	if err != nil || h == "" || port == "" {
		return fmt.Errorf("%s %q: want HOST:PORT", what, v)
	}
	return nil
}

// AddPeer pins a peer cluster by hand: its CA from a PEM file and its API
// and SIP endpoints.
func (a *Admin) AddPeer(ctx context.Context, domain, caFile, apiAddr, sipAddr string) (PeerInfo, error) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if err := ident.CheckDomain(domain); err != nil {
		return PeerInfo{}, err
	}
	if domain == a.cfg.Domain {
		return PeerInfo{}, ErrOwnDomain
	}
	if err := checkHostPort("--api", apiAddr); err != nil {
		return PeerInfo{}, err
	}
	if err := checkHostPort("--sip", sipAddr); err != nil {
		return PeerInfo{}, err
	}
	c, err := federation.ReadCA(caFile)
	if err != nil {
		return PeerInfo{}, err
	}
	return a.addPeer(ctx, domain, c, apiAddr, sipAddr)
}

// AddPeerDNS pins a peer cluster found through its DNSSEC-signed zone:
// endpoints from SRV records and the CA from the TLSA record of its API
// endpoint, every answer validated from anchors (DS or DNSKEY records of
// the peer's zone or of a zone above it) by asking server (the peer's
// authoritative server or a resolver; its AD bit is not trusted).
func (a *Admin) AddPeerDNS(ctx context.Context, domain, server string, anchors []dns.RR) (PeerInfo, error) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if err := ident.CheckDomain(domain); err != nil {
		return PeerInfo{}, err
	}
	if domain == a.cfg.Domain {
		return PeerInfo{}, ErrOwnDomain
	}
	if len(anchors) == 0 {
		return PeerInfo{}, fmt.Errorf("%s: a trust anchor (DS or DNSKEY) for its zone or a zone above it is needed", domain)
	}
	d, err := federation.Discover(ctx, &dnsval.Resolver{Server: server, Anchors: anchors}, domain)
	if err != nil {
		return PeerInfo{}, err // names the domain
	}
	return a.addPeer(ctx, domain, d.CA, d.API, d.SIP)
}

func (a *Admin) addPeer(ctx context.Context, domain string, c *x509.Certificate, apiAddr, sipAddr string) (PeerInfo, error) {
	p := store.Peer{Domain: domain, CA: c.Raw, CASHA256: ca.Fingerprint(c), API: apiAddr, SIP: sipAddr, Added: a.now()}
	if err := a.st.AddPeer(ctx, p); errors.Is(err, store.ErrExists) {
		return PeerInfo{}, fmt.Errorf("%s is already a peer; to change its CA use federation accept", domain)
	} else if err != nil {
		return PeerInfo{}, err
	}
	return peerInfo(p), nil
}

// AcceptPeerCA pins a new CA for a known peer (after the peer changed it),
// and new endpoints where given.
func (a *Admin) AcceptPeerCA(ctx context.Context, domain, caFile, apiAddr, sipAddr string) (PeerInfo, error) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	p, err := a.st.Peer(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return PeerInfo{}, fmt.Errorf("%s is not a peer", domain)
	} else if err != nil {
		return PeerInfo{}, err
	}
	c, err := federation.ReadCA(caFile)
	if err != nil {
		return PeerInfo{}, err
	}
	for _, x := range []struct {
		flag, v string
		dst     *string
	}{{"--api", apiAddr, &p.API}, {"--sip", sipAddr, &p.SIP}} {
		if x.v == "" {
			continue
		}
		if err := checkHostPort(x.flag, x.v); err != nil {
			return PeerInfo{}, err
		}
		*x.dst = x.v
	}
	p.CA, p.CASHA256, p.Presented, p.PresentedAt = c.Raw, ca.Fingerprint(c), "", time.Time{}
	if err := a.st.UpdatePeer(ctx, p); err != nil {
		return PeerInfo{}, err
	}
	return peerInfo(p), nil
}

// Peers lists the federation peers.
func (a *Admin) Peers(ctx context.Context) ([]PeerInfo, error) {
	ps, err := a.st.Peers(ctx)
	if err != nil {
		return nil, err
	}
	out := []PeerInfo{}
	for _, p := range ps {
		out = append(out, peerInfo(p))
	}
	return out, nil
}

// RemovePeer forgets a peer; messages queued for it wait until it is
// added again.
func (a *Admin) RemovePeer(ctx context.Context, domain string) error {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if err := a.st.RemovePeer(ctx, domain); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%s is not a peer", domain)
	} else if err != nil {
		return err
	}
	return nil
}
