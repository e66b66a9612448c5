// Package ca is a cluster's certification authority: it makes the CA and the
// server's TLS certificate at init, issues device certificates from CSRs, and
// checks the certificates devices present.
package ca

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
)

// Errors a caller branches on when checking a presented certificate.
var (
	ErrNoCertificate = errors.New("no client certificate presented")
	ErrUnknownCA     = errors.New("certificate not issued by this cluster's CA")
	ErrExpired       = errors.New("certificate expired")
	ErrNotYetValid   = errors.New("certificate not yet valid")
	ErrNoIdentity    = errors.New("certificate names no device identity")
	ErrBadCSR        = errors.New("invalid certificate request")
)

// File names inside the data directory.
const (
	CACertFile     = "ca.pem"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.pem"
	ServerKeyFile  = "server.key"
)

// CA is a loaded certification authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	pool *x509.CertPool
}

// Fingerprint is the SHA-256 of a certificate's DER, in lower-case hex.
func Fingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}

// NormalizeFingerprint accepts hex with or without colons, any case.
func NormalizeFingerprint(s string) string {
	return strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s)))
}

// Init creates the CA and the server certificate in dir. hosts go into the
// server certificate's SANs: every host as a DNS name (SIP phones match only
// DNS names, even for addresses) and, where it is an address, as an IP too.
func Init(dir, domain string, hosts []string, now time.Time) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("init %s: a CA already exists there", dir)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "PhoneX CA " + domain, Organization: []string{domain}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, _ := x509.ParseCertificate(der)
	c := &CA{Cert: cert, Key: key}
	if err := writeKey(filepath.Join(dir, CAKeyFile), key); err != nil {
		return nil, err
	}
	if err := writeCert(filepath.Join(dir, CACertFile), cert.Raw); err != nil {
		return nil, err
	}
	if err := c.IssueServer(dir, domain, hosts, now); err != nil {
		return nil, err
	}
	return c, nil
}

// IssueServer (re)writes the server's TLS certificate and key.
func (c *CA) IssueServer(dir, domain string, hosts []string, now time.Time) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: domain},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	seen := map[string]bool{}
	for _, h := range append([]string{domain}, hosts...) {
		if h == "" || seen[h] {
			continue
		}
		seen[h] = true
		tmpl.DNSNames = append(tmpl.DNSNames, h)
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, &key.PublicKey, c.Key)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	if err := writeKey(filepath.Join(dir, ServerKeyFile), key); err != nil {
		return err
	}
	return writeCert(filepath.Join(dir, ServerCertFile), der)
}

// Load reads the CA from dir.
func Load(dir string) (*CA, error) {
	cert, err := ReadCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	b, _ := pem.Decode(raw)
	if b == nil {
		return nil, fmt.Errorf("read CA key: no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("read CA key: %T is not a signer", k)
	}
	return &CA{Cert: cert, Key: s}, nil
}

// Pool is a pool holding just this CA.
func (c *CA) Pool() *x509.CertPool {
	if c.pool == nil {
		c.pool = x509.NewCertPool()
		c.pool.AddCert(c.Cert)
	}
	return c.pool
}

// Issued is what the CA returns for one device.
type Issued struct {
	Sign *x509.Certificate // the device's signing/TLS certificate
	Kex  *x509.Certificate // the X25519 key-agreement certificate; nil for rsa
}

// IssueDevice checks a CSR for dev and issues its certificates. kexPub and
// kexSig are the device's X25519 key and its binding signature (ec suite).
func (c *CA) IssueDevice(csrDER []byte, dev ident.Device, kexPub, kexSig []byte, validity time.Duration, now time.Time) (*Issued, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	got, err := ident.FromURIs(csr.URIs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if got != dev {
		return nil, fmt.Errorf("%w: requests %s, expected %s", ErrBadCSR, got, dev)
	}
	suite, err := keys.SuiteOf(csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	var kex *ecdh.PublicKey
	switch {
	case suite == keys.SuiteEC:
		if kex, err = keys.VerifyKexProof(csr.PublicKey, dev, kexPub, kexSig); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
		}
	case len(kexPub) != 0:
		return nil, fmt.Errorf("%w: the rsa suite has no X25519 key", ErrBadCSR)
	}
	out := &Issued{}
	tmpl := c.deviceTemplate(dev, validity, now)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if suite == keys.SuiteRSA {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if out.Sign, err = c.sign(tmpl, csr.PublicKey); err != nil {
		return nil, err
	}
	if kex != nil {
		kt := c.deviceTemplate(dev, validity, now)
		kt.KeyUsage = x509.KeyUsageKeyAgreement
		if out.Kex, err = c.signX25519(kt, kex); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (c *CA) deviceTemplate(dev ident.Device, validity time.Duration, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: dev.String()},
		URIs:         []*url.URL{dev.URI()},
		// Backdated for clock skew, by at most a tenth of the lifetime so
		// that short test lifetimes keep their meaning.
		NotBefore: now.Add(-min(time.Minute, validity/10)),
		NotAfter:  now.Add(validity),
	}
}

func (c *CA) sign(tmpl *x509.Certificate, pub crypto.PublicKey) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, pub, c.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// VerifyDevice checks that cert was issued by this CA, is valid at now and
// names a device; it returns that device.
func (c *CA) VerifyDevice(cert *x509.Certificate, now time.Time) (ident.Device, error) {
	if cert == nil {
		return ident.Device{}, ErrNoCertificate
	}
	if err := cert.CheckSignatureFrom(c.Cert); err != nil {
		return ident.Device{}, ErrUnknownCA
	}
	if now.After(cert.NotAfter) {
		return ident.Device{}, fmt.Errorf("%w on %s", ErrExpired, cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if now.Before(cert.NotBefore) {
		return ident.Device{}, ErrNotYetValid
	}
	d, err := ident.FromURIs(cert.URIs)
	if err != nil {
		return ident.Device{}, fmt.Errorf("%w: %v", ErrNoIdentity, err)
	}
	return d, nil
}

// Serial renders a certificate serial as lower-case hex.
func Serial(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

func randSerial() *big.Int {
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b)
}

func writeKey(path string, k crypto.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return os.Chmod(path, 0o600)
}

func writeCert(path string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// EncodePEM renders a certificate as PEM.
func EncodePEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// ParsePEM reads the first certificate of a PEM file's contents.
func ParsePEM(data []byte) (*x509.Certificate, error) {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil, errors.New("no PEM certificate found")
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

// ReadCert reads a PEM certificate file.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	c, err := ParsePEM(data)
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", filepath.Base(path), err)
	}
	return c, nil
}
