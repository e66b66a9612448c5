package server

import (
	"fmt"
	"net"
	"path/filepath"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/qrcard"
)

// EnrollTarget is what a device enrolls against: the API address from the
// configuration (a wildcard listener replaced by the first of hosts, the
// names the server certificate carries) and the CA's SHA-256 fingerprint.
func EnrollTarget(cfg Config) (addr, fingerprint string, err error) {
	cert, err := ca.ReadCert(filepath.Join(cfg.DataDir, ca.CACertFile))
	if err != nil {
		return "", "", fmt.Errorf("CA certificate: %w", err)
	}
	addr = cfg.APIAddr
	host, port, err := net.SplitHostPort(addr)
	if err == nil && len(cfg.Hosts) > 0 {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			addr = net.JoinHostPort(cfg.Hosts[0], port)
		}
	}
	return addr, ca.Fingerprint(cert), nil
}

// EnrollmentCard is the QR card of a new account's activation: the
// address and CA fingerprint of EnrollTarget with the code. Its PNG, SVG
// and terminal renderings carry the code, a secret.
func (a *Admin) EnrollmentCard(act Activation) (qrcard.Card, error) {
	addr, fp, err := EnrollTarget(a.cfg)
	if err != nil {
		return qrcard.Card{}, err
	}
	c := qrcard.Card{User: act.User, Server: addr, CA: fp, Code: act.Code}
	if err := c.Check(); err != nil {
		return qrcard.Card{}, fmt.Errorf("enrollment card: %w", err)
	}
	return c, nil
}
