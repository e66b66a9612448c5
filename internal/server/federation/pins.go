// Package federation links this cluster with other clusters: the peers an
// operator pinned (their CA and endpoints), the checks of the node and
// device certificates peers present, the queue of messages waiting for a
// peer, and the HTTPS calls one node makes to another.
//
// Every link is mutual TLS. A node presents its server certificate (issued
// by its own cluster CA for its domain, with both the server and client
// usages) and accepts a peer's node certificate only if it chains to the CA
// pinned for the domain the certificate names. A device certificate a peer
// forwards is checked against that same pinned CA, and must name an account
// of that domain: a peer speaks only for its own users.
package federation

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
)

// Errors callers branch on.
var (
	ErrUnknownPeer = errors.New("no federation peer is configured for this domain")
	ErrCAChanged   = errors.New("certificate not issued by the CA pinned for this domain; an operator must accept a new CA")
	ErrNotNode     = errors.New("certificate names no cluster node")
	ErrWrongDomain = errors.New("certificate names an account of another domain")
	ErrNotCA       = errors.New("certificate is not a CA certificate")
)

// ReadCA reads a peer's CA certificate from a PEM file.
func ReadCA(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	c, err := ca.ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("read CA %s: %w", path, err)
	}
	if !c.IsCA || !c.BasicConstraintsValid {
		return nil, fmt.Errorf("read CA %s: %w", path, ErrNotCA)
	}
	return c, nil
}

// Pins checks certificates against the CAs pinned for peers.
type Pins struct {
	St  store.Store
	Log *slog.Logger
	Now func() time.Time
}

func (p *Pins) now() time.Time {
	if p.Now == nil {
		return time.Now()
	}
	return p.Now()
}

func (p *Pins) peerCA(ctx context.Context, domain string) (store.Peer, *x509.Certificate, error) {
	peer, err := p.St.Peer(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return peer, nil, fmt.Errorf("%s: %w", domain, ErrUnknownPeer)
	}
	if err != nil {
		return peer, nil, err
	}
	c, err := x509.ParseCertificate(peer.CA)
	if err != nil {
		return peer, nil, fmt.Errorf("pinned CA of %s: %w", domain, err)
	}
	return peer, c, nil
}

// RemoteDeviceID is the id a device of another cluster goes by in this
// node: negative, so no local row has it, and stable, so limits keyed by
// device (one-time key handouts, subscriptions) hold across requests.
func RemoteDeviceID(d ident.Device) int64 {
	h := sha256.Sum256([]byte("phonex/v1/remote-device\x00" + d.String()))
	return -int64(binary.BigEndian.Uint64(h[:8])>>1) - 1
}

// NodeDomain is the domain a node certificate claims: its common name,
// which must be a domain, with no device identity in it. It does not check
// the certificate.
func NodeDomain(cert *x509.Certificate) (string, error) {
	if cert == nil || len(cert.URIs) > 0 {
		return "", ErrNotNode
	}
	d := cert.Subject.CommonName
	if ident.CheckDomain(d) != nil {
		return "", ErrNotNode
	}
	return d, nil
}

// VerifyNode checks a node's certificate chain (leaf first, as presented
// in the handshake) against the CA pinned for the domain it names, for the
// given usage, and returns that domain. A chain that carries a different
// CA is recorded as presented, for the operator to see.
func (p *Pins) VerifyNode(ctx context.Context, chain []*x509.Certificate, usage x509.ExtKeyUsage) (string, error) {
	if len(chain) == 0 {
		return "", ErrNotNode
	}
	domain, err := NodeDomain(chain[0])
	if err != nil {
		return "", err
	}
	return domain, p.verifyNodeFor(ctx, domain, chain, usage)
}

// verifyNodeFor checks a chain against the CA pinned for domain.
func (p *Pins) verifyNodeFor(ctx context.Context, domain string, chain []*x509.Certificate, usage x509.ExtKeyUsage) error {
	if len(chain) == 0 {
		return ErrNotNode
	}
	_, pinned, err := p.peerCA(ctx, domain)
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	_, err = chain[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: domain, CurrentTime: p.now(), KeyUsages: []x509.ExtKeyUsage{usage}})
	if err == nil {
		return nil
	}
	p.presented(ctx, domain, chain, pinned)
	return fmt.Errorf("node of %s: %w (%v)", domain, ErrCAChanged, err)
}

// presented records the CA a refused chain carries, if it is not the
// pinned one.
func (p *Pins) presented(ctx context.Context, domain string, chain []*x509.Certificate, pinned *x509.Certificate) {
	last := chain[len(chain)-1]
	if len(chain) < 2 || !last.IsCA || last.Equal(pinned) {
		return
	}
	fp := ca.Fingerprint(last)
	if err := p.St.PeerPresented(ctx, domain, fp, p.now()); err != nil && p.Log != nil {
		p.Log.Error("record a presented CA", "err", err)
	}
	if p.Log != nil {
		p.Log.Warn("peer presented a CA that is not pinned; refused", "domain", domain, "presented", fp)
	}
}

// VerifyDevice checks a device certificate forwarded by the node of domain
// against the CA pinned for it and returns the device it names, which must
// be of that domain.
func (p *Pins) VerifyDevice(ctx context.Context, domain string, der []byte) (ident.Device, *x509.Certificate, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return ident.Device{}, nil, fmt.Errorf("device certificate: %w", err)
	}
	_, pinned, err := p.peerCA(ctx, domain)
	if err != nil {
		return ident.Device{}, nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(pinned)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: p.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return ident.Device{}, nil, fmt.Errorf("device of %s: %w (%v)", domain, ErrCAChanged, err)
	}
	d, err := ident.FromURIs(cert.URIs)
	if err != nil {
		return d, nil, fmt.Errorf("device of %s: %w", domain, err)
	}
	if d.Account.Domain != domain {
		return d, nil, fmt.Errorf("%s forwarded by %s: %w", d, domain, ErrWrongDomain)
	}
	return d, cert, nil
}

// ClientTLS is the configuration for dialling the peer of domain: this
// node's certificate, and the peer's server certificate checked against
// the CA pinned for domain (not the system roots, not the dialled host).
func (p *Pins) ClientTLS(domain string, node tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates:       []tls.Certificate{node},
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // checked by VerifyConnection against the pin
		VerifyConnection: func(cs tls.ConnectionState) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return p.verifyNodeFor(ctx, domain, cs.PeerCertificates, x509.ExtKeyUsageServerAuth)
		},
	}
}
