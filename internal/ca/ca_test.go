package ca

import (
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
)

func newCA(t *testing.T) (*CA, string) {
	t.Helper()
	dir := t.TempDir()
	c, err := Init(dir, "example.org", []string{"127.0.0.1", "node1.example.org"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c, dir
}

func TestInitServerCertificate(t *testing.T) {
	c, dir := newCA(t)
	srv, err := ReadCert(dir + "/" + ServerCertFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("IP SAN: %v", err)
	}
	var dns127 bool
	for _, n := range srv.DNSNames {
		dns127 = dns127 || n == "127.0.0.1"
	}
	if !dns127 {
		t.Errorf("address must also be a DNS SAN for SIP phones: %v", srv.DNSNames)
	}
	if _, err := srv.Verify(x509.VerifyOptions{Roots: c.Pool(), DNSName: "node1.example.org"}); err != nil {
		t.Error(err)
	}
	loaded, err := Load(dir)
	if err != nil || Fingerprint(loaded.Cert) != Fingerprint(c.Cert) {
		t.Fatalf("load: %v", err)
	}
	if _, err := Init(dir, "example.org", nil, time.Now()); err == nil {
		t.Fatal("second init over an existing CA succeeded")
	}
}

func TestIssueDevice(t *testing.T) {
	c, _ := newCA(t)
	other, _ := newCA(t)
	dev, _ := ident.ParseDevice("alpha@example.org/laptop")
	now := time.Now()
	for _, tc := range []struct {
		suite keys.Suite
		bits  int
	}{{keys.SuiteEC, 0}, {keys.SuiteRSA, 2048}} {
		k, err := keys.Generate(tc.suite, tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		csr, err := k.CSR(dev)
		if err != nil {
			t.Fatal(err)
		}
		pub, sig, err := k.KexProof(dev)
		if err != nil {
			t.Fatal(err)
		}
		is, err := c.IssueDevice(csr, dev, pub, sig, time.Hour, now)
		if err != nil {
			t.Fatalf("%s: %v", tc.suite, err)
		}
		got, err := c.VerifyDevice(is.Sign, now)
		if err != nil || got != dev {
			t.Fatalf("%s: verify: %v %v", tc.suite, got, err)
		}
		if !k.SamePublic(is.Sign) {
			t.Error("certificate key differs from the device key")
		}
		if tc.suite == keys.SuiteEC {
			kp, err := KexPublic(is.Kex)
			if err != nil || !kp.Equal(k.Kex.PublicKey()) {
				t.Error("x25519 certificate missing or wrong")
			}
			if is.Kex.KeyUsage != x509.KeyUsageKeyAgreement {
				t.Error("x25519 certificate usage")
			}
		}
		if _, err := c.VerifyDevice(is.Sign, now.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
			t.Errorf("expired: %v", err)
		}
		if _, err := other.VerifyDevice(is.Sign, now); !errors.Is(err, ErrUnknownCA) {
			t.Errorf("other CA: %v", err)
		}
		bravo, _ := ident.ParseDevice("bravo@example.org/laptop")
		if _, err := c.IssueDevice(csr, bravo, pub, sig, time.Hour, now); !errors.Is(err, ErrBadCSR) {
			t.Errorf("identity mismatch: %v", err)
		}
		if tc.suite == keys.SuiteEC {
			k2, _ := keys.Generate(keys.SuiteEC, 0)
			pub2, sig2, _ := k2.KexProof(dev)
			if _, err := c.IssueDevice(csr, dev, pub2, sig2, time.Hour, now); !errors.Is(err, ErrBadCSR) {
				t.Errorf("x25519 key vouched by another key: %v", err)
			}
			if _, err := c.IssueDevice(csr, dev, nil, nil, time.Hour, now); !errors.Is(err, ErrBadCSR) {
				t.Errorf("missing x25519 key: %v", err)
			}
		}
		bad := append([]byte{}, csr...)
		bad[len(bad)-5] ^= 1
		if _, err := c.IssueDevice(bad, dev, pub, sig, time.Hour, now); !errors.Is(err, ErrBadCSR) {
			t.Errorf("tampered csr: %v", err)
		}
	}
}

func FuzzIssueDevice(f *testing.F) {
	c, err := Init(f.TempDir(), "example.org", nil, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	dev, _ := ident.ParseDevice("alpha@example.org/laptop")
	k, _ := keys.Generate(keys.SuiteEC, 0)
	csr, _ := k.CSR(dev)
	pub, sig, _ := k.KexProof(dev)
	f.Add(csr, pub, sig)
	f.Fuzz(func(t *testing.T, csr, pub, sig []byte) {
		is, err := c.IssueDevice(csr, dev, pub, sig, time.Hour, time.Now())
		if err == nil && is.Sign == nil {
			t.Fatal("no certificate and no error")
		}
	})
}
