package proxy

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store/sqlite"
)

// oneDevice accepts every certificate as the same device.
type oneDevice struct{}

func (oneDevice) Certificate(context.Context, *x509.Certificate) (Identity, error) {
	return Identity{AccountID: 1, DeviceID: 1, Account: "idle@example.org", Device: "d"}, nil
}
func (oneDevice) SIPCredential(context.Context, string) (Identity, []byte, error) {
	return Identity{}, nil, &Refusal{Status: 403, Reason: "Forbidden"}
}
func (oneDevice) SIPAttempt(context.Context, int64) error  { return nil }
func (oneDevice) SIPVerified(context.Context, int64) error { return nil }

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idle"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

// idleRig is a proxy whose every client certificate is one device.
func idleRig(t *testing.T, lim Limits) (addr string, p *Proxy) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p, err = New(Config{Domain: "example.org", Store: st, Auth: oneDevice{}, NonceKey: []byte("k"), Limits: lim,
		TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, ClientAuth: tls.RequestClientCert, SessionTicketsDisabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Serve(ctx, ln)
	return ln.Addr().String(), p
}

func register(t *testing.T, c net.Conn, r *bufio.Reader, cseq, expires int) {
	t.Helper()
	fmt.Fprintf(c, "REGISTER sip:example.org SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bKk%d\r\nFrom: <sip:idle@example.org>;tag=k\r\n"+
		"To: <sip:idle@example.org>\r\nCall-ID: keep\r\nCSeq: %d REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:idle@example.org;transport=tls>\r\n"+
		"Expires: %d\r\nContent-Length: 0\r\n\r\n", c.LocalAddr(), cseq, cseq, expires)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SIP/2.0 200") {
		t.Fatalf("REGISTER: %q %v", line, err)
	}
	for line != "\r\n" && err == nil {
		line, err = r.ReadString('\n')
	}
}

// gone reports whether the node closed c within d.
func gone(c net.Conn, r *bufio.Reader, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := r.ReadByte()
	return err == io.EOF
}

// TestRegistrationKeepsConnection: a connection is closed after the idle
// timeout unless it carries a live registration; unregistering makes it
// idle like any other.
func TestRegistrationKeepsConnection(t *testing.T) {
	addr, _ := idleRig(t, Limits{IdleTimeout: time.Second})
	client := &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{selfSigned(t)}}

	plain, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	reg, err := tls.Dial("tcp", addr, client)
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	rr := bufio.NewReader(reg)
	register(t, reg, rr, 1, 60)
	if !gone(plain, bufio.NewReader(plain), 3*time.Second) {
		t.Fatal("an idle connection without a registration was kept")
	}
	if gone(reg, rr, 2*time.Second) {
		t.Fatal("a registered connection was cut while idle")
	}
	register(t, reg, rr, 2, 0)
	if !gone(reg, rr, 3*time.Second) {
		t.Fatal("an unregistered connection was kept")
	}
}
