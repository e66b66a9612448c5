package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/phonex/phonex/internal/dnsval"
)

// Errors of discovery.
var (
	ErrNoEndpoint = errors.New("the zone names no SIP or API endpoint pinned by a TLSA record")
	ErrNoPinnedCA = errors.New("no CA the zone pins was presented by the peer's API endpoint")
)

// Discovered is a peer found through its DNSSEC-signed zone.
type Discovered struct {
	CA       *x509.Certificate
	API, SIP string // host:port
}

// Discover finds the cluster of domain from its zone, every answer
// validated from the resolver's trust anchors (never a resolver's AD bit):
// the _phonex-api._tcp and _sips._tcp SRV records, their targets'
// addresses, and the TLSA records (RFC 7671 §5.2, DANE-TA 2 0 1) that pin
// the digest of the cluster's CA. The CA itself is the one the API
// endpoint presents in its chain whose SHA-256 the TLSA record names, and
// it must have issued the endpoint's certificate for domain; the SIP
// endpoint chosen is one its zone pins to the same CA.
func Discover(ctx context.Context, r *dnsval.Resolver, domain string) (Discovered, error) {
	c, err := r.Cluster(ctx, domain)
	if err != nil {
		return Discovered{}, err
	}
	var out Discovered
	var errs []error
	for _, ep := range c.API {
		if len(ep.CADigest) == 0 {
			continue
		}
		ca, err := presentedCA(ctx, ep, domain)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep.Addr, err))
			continue
		}
		out.CA, out.API = ca, ep.Addr
		break
	}
	if out.CA == nil {
		if len(errs) == 0 {
			return out, fmt.Errorf("%s: %w", domain, ErrNoEndpoint)
		}
		return out, fmt.Errorf("%s: %w", domain, errors.Join(errs...))
	}
	for _, ep := range c.SIP {
		if ep.MatchesCA(out.CA) {
			out.SIP = ep.Addr
			break
		}
	}
	if out.SIP == "" {
		return out, fmt.Errorf("%s: %w", domain, ErrNoEndpoint)
	}
	return out, nil
}

// presentedCA dials a TLS endpoint and returns the CA certificate of its
// chain that the endpoint's TLSA records pin and that issued its
// certificate for domain.
func presentedCA(ctx context.Context, ep dnsval.Endpoint, domain string) (*x509.Certificate, error) {
	var found *x509.Certificate
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         domain,
		InsecureSkipVerify: true, // checked by VerifyConnection against the TLSA pin
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrNoPinnedCA
			}
			for _, c := range cs.PeerCertificates[1:] {
				if !c.IsCA || !ep.MatchesCA(c) {
					continue
				}
				roots := x509.NewCertPool()
				roots.AddCert(c)
				if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: domain,
					KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
					found = c
					return nil
				}
			}
			return ErrNoPinnedCA
		},
	}}
	conn, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return found, nil
}
