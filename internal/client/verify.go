package client

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
)

type verifiedDevice struct {
	ContactDevice
	kexSHA string
}

func keySHA(c *x509.Certificate) string {
	h := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h[:])
}

// verifyContactDevice checks a contact's device certificates against the CA
// (both the signing and the key-agreement certificate) and the identity.
func verifyContactDevice(caCert *x509.Certificate, user string, d api.ContactDevice, now time.Time) (verifiedDevice, error) {
	var out verifiedDevice
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	cert, err := x509.ParseCertificate(d.Cert)
	if err != nil {
		return out, fmt.Errorf("contact %s/%s: %w", user, d.Name, err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return out, fmt.Errorf("contact %s/%s: %w", user, d.Name, err)
	}
	id, err := ident.FromURIs(cert.URIs)
	if err != nil || id.Account.String() != user || id.Name != d.Name {
		return out, fmt.Errorf("contact %s/%s: certificate names %v", user, d.Name, id)
	}
	suite, err := keys.SuiteOf(cert.PublicKey)
	if err != nil {
		return out, err
	}
	out.ContactDevice = ContactDevice{Name: d.Name, Suite: string(suite), KeySHA256: keySHA(cert), NotAfter: cert.NotAfter.UTC()}
	if d.KexCert != nil {
		kc, err := x509.ParseCertificate(d.KexCert)
		if err != nil {
			return out, fmt.Errorf("contact %s/%s key-agreement certificate: %w", user, d.Name, err)
		}
		if err := kc.CheckSignatureFrom(caCert); err != nil {
			return out, fmt.Errorf("contact %s/%s key-agreement certificate: %w", user, d.Name, err)
		}
		if now.After(kc.NotAfter) {
			return out, fmt.Errorf("contact %s/%s key-agreement certificate expired", user, d.Name)
		}
		if kid, err := ident.FromURIs(kc.URIs); err != nil || kid != id {
			return out, fmt.Errorf("contact %s/%s: key-agreement certificate names %v", user, d.Name, kid)
		}
		if _, err := ca.KexPublic(kc); err != nil {
			return out, err
		}
		out.kexSHA = keySHA(kc)
	}
	return out, nil
}
