package client

import (
	"context"
	"crypto/x509"

	"github.com/phonex/phonex/internal/ident"
)

// caFor is the CA a contact's device certificates must chain to: this
// cluster's for its own accounts; for an account of another cluster, that
// cluster's CA as this device's cluster pinned it for the domain (sent
// with the answer). The cluster vouches for the pin as it vouches for its
// own CA; devices still pin each contact device's key on first use and
// show every change.
func (p *Profile) caFor(acct ident.Account, der []byte) *x509.Certificate {
	if acct.Domain == p.Device.Account.Domain || len(der) == 0 {
		return p.CA
	}
	c, err := x509.ParseCertificate(der)
	if err != nil || !c.IsCA || !c.BasicConstraintsValid {
		// Verification against this cluster's CA then fails, as it must.
		return p.CA
	}
	return c
}

// contactCA is the CA of a contact of another cluster as the contact list
// last gave it; nil for this cluster's contacts or when none is cached.
func (s *callSigner) contactCA(ctx context.Context, acct ident.Account) []byte {
	if acct.Domain == s.p.Device.Account.Domain {
		return nil
	}
	e, ok, err := s.p.db.cachedContact(ctx, acct.String())
	if err != nil || !ok {
		return nil
	}
	return e.CA
}
