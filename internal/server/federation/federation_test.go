package federation

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

// testCA is a cluster's CA in a temporary directory, with its node
// certificate as the node loads it.
type testCA struct {
	ca   *ca.CA
	dir  string
	node tls.Certificate
}

func newTestCA(t testing.TB, domain string) *testCA {
	t.Helper()
	dir := t.TempDir()
	c, err := ca.Init(dir, domain, []string{"127.0.0.1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	node, err := tls.LoadX509KeyPair(filepath.Join(dir, ca.ServerCertFile), filepath.Join(dir, ca.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	node.Certificate = append(node.Certificate, c.Cert.Raw)
	return &testCA{ca: c, dir: dir, node: node}
}

func (c *testCA) chain(t testing.TB) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for _, der := range c.node.Certificate {
		x, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, x)
	}
	return out
}

// device issues a device certificate as the CA does: the identity in a
// URI, client authentication.
func (c *testCA) device(t testing.TB, dev string) []byte {
	t.Helper()
	d, err := ident.ParseDevice(dev)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: dev},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, URIs: []*url.URL{d.URI()}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca.Cert, &key.PublicKey, c.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func pin(t testing.TB, st store.Store, domain string, c *testCA) {
	t.Helper()
	if err := st.AddPeer(context.Background(), store.Peer{Domain: domain, CA: c.ca.Cert.Raw, CASHA256: ca.Fingerprint(c.ca.Cert),
		API: "127.0.0.1:1", SIP: "127.0.0.1:2", Added: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNode(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	b := newTestCA(t, "b.example")
	forged := newTestCA(t, "b.example")
	c := newTestCA(t, "c.example")
	pin(t, st, "b.example", b)
	pins := &Pins{St: st}
	for _, tc := range []struct {
		name  string
		chain []*x509.Certificate
		want  error
	}{
		{"pinned", b.chain(t), nil},
		{"forged CA for the domain", forged.chain(t), ErrCAChanged},
		{"not a peer", c.chain(t), ErrUnknownPeer},
		{"empty", nil, ErrNotNode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := pins.VerifyNode(ctx, tc.chain, x509.ExtKeyUsageClientAuth)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyNode: %q, %v; want %v", d, err, tc.want)
			}
		})
	}
	p, _ := st.Peer(ctx, "b.example")
	if p.Presented != ca.Fingerprint(forged.ca.Cert) || p.CASHA256 != ca.Fingerprint(b.ca.Cert) {
		t.Fatalf("after the forged chain: presented %q pinned %q", p.Presented, p.CASHA256)
	}
	// A device certificate is no node certificate, whoever issued it.
	dev, _ := x509.ParseCertificate(b.device(t, "bravo@b.example/b1"))
	if _, err := pins.VerifyNode(ctx, []*x509.Certificate{dev}, x509.ExtKeyUsageClientAuth); !errors.Is(err, ErrNotNode) {
		t.Fatalf("device as node: %v", err)
	}
}

func TestVerifyDevice(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	b := newTestCA(t, "b.example")
	forged := newTestCA(t, "b.example")
	pin(t, st, "b.example", b)
	pins := &Pins{St: st}
	for _, tc := range []struct {
		name string
		der  []byte
		want error
	}{
		{"pinned CA", b.device(t, "bravo@b.example/b1"), nil},
		{"forged CA", forged.device(t, "bravo@b.example/b1"), ErrCAChanged},
		{"an account of another domain", b.device(t, "mallory@c.example/m1"), ErrWrongDomain},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _, err := pins.VerifyDevice(ctx, "b.example", tc.der)
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyDevice: %v, %v; want %v", d, err, tc.want)
			}
			if err == nil && d.String() != "bravo@b.example/b1" {
				t.Fatalf("device %v", d)
			}
		})
	}
	if _, _, err := pins.VerifyDevice(ctx, "b.example", []byte("not DER")); err == nil {
		t.Fatal("garbage accepted")
	}
}

// TestClientTLS dials a TLS server holding a node certificate, as a node
// dials a peer: the pinned peer is accepted, a forger for its domain is
// refused in the handshake, and the server sees the client's node
// certificate.
func TestClientTLS(t *testing.T) {
	st := openStore(t)
	a := newTestCA(t, "a.example")
	b := newTestCA(t, "b.example")
	forged := newTestCA(t, "b.example")
	pin(t, st, "b.example", b)
	pins := &Pins{St: st}
	for _, tc := range []struct {
		name   string
		server *testCA
		ok     bool
	}{{"pinned", b, true}, {"forged", forged, false}} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{tc.server.node}, ClientAuth: tls.RequestClientCert})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan int, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				tc := c.(*tls.Conn)
				tc.Handshake()
				got <- len(tc.ConnectionState().PeerCertificates)
			}()
			c, err := tls.Dial("tcp", ln.Addr().String(), pins.ClientTLS("b.example", a.node))
			if tc.ok != (err == nil) {
				t.Fatalf("dial: %v", err)
			}
			if err == nil {
				c.Close()
				if n := <-got; n != 2 {
					t.Fatalf("server saw %d client certificates, want the node's and its CA", n)
				}
			}
		})
	}
}
