package dnsval

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/phonex/phonex/internal/dnsname"
)

// Endpoint is a validated service address with the CA digests pinned for
// it by TLSA records.
type Endpoint struct {
	Addr     string   // ip:port
	Host     string   // the SRV target
	CADigest [][]byte // SHA-256 of the DER certificates of trusted CAs (TLSA 2 0 1)
}

// Cluster is what a node learns about another cluster from its zone.
type Cluster struct {
	SIP []Endpoint // _sips._tcp
	API []Endpoint // _phonex-api._tcp
}

// Cluster discovers domain's SIP and API endpoints and their CA pins, all
// validated: SRV records, the targets' addresses and the TLSA records at
// _port._tcp.<target> (RFC 6698 §3, RFC 7671 §5.2 DANE-TA).
func (r *Resolver) Cluster(ctx context.Context, domain string) (Cluster, error) {
	var c Cluster
	for _, s := range []struct {
		service string
		out     *[]Endpoint
	}{{dnsname.ServiceSIPS, &c.SIP}, {dnsname.ServiceAPI, &c.API}} {
		srvs, err := r.SRV(ctx, s.service, "tcp", domain)
		if err != nil {
			return Cluster{}, fmt.Errorf("discover %s: %w", domain, err)
		}
		for _, srv := range srvs {
			addrs, err := r.Addrs(ctx, srv.Target)
			if err != nil {
				return Cluster{}, fmt.Errorf("discover %s: %s: %w", domain, srv.Target, err)
			}
			var pins [][]byte
			tl, err := r.TLSA(ctx, dnsname.TLSA(srv.Port, "tcp", srv.Target))
			if err != nil && !errors.Is(err, ErrNoData) && !errors.Is(err, ErrNXDomain) {
				return Cluster{}, fmt.Errorf("discover %s: %w", domain, err)
			}
			for _, t := range tl {
				if t.Usage == 2 && t.Selector == 0 && t.MatchingType == 1 {
					if d, err := hex.DecodeString(t.Certificate); err == nil && len(d) == sha256.Size {
						pins = append(pins, d)
					}
				}
			}
			for _, a := range addrs {
				*s.out = append(*s.out, Endpoint{Addr: net.JoinHostPort(a.String(), strconv.Itoa(int(srv.Port))),
					Host: strings.TrimSuffix(srv.Target, "."), CADigest: pins})
			}
		}
	}
	return c, nil
}

// MatchesCA reports whether the CA certificate ca is pinned for e.
func (e Endpoint) MatchesCA(ca *x509.Certificate) bool {
	d := sha256.Sum256(ca.Raw)
	for _, p := range e.CADigest {
		if string(p) == string(d[:]) {
			return true
		}
	}
	return false
}
