package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/pidf"
	"github.com/phonex/phonex/internal/store/sqlite"
)

// answerTx is a server transaction that keeps the answers given.
type answerTx struct {
	sip.ServerTransaction
	mu   sync.Mutex
	sent []*sip.Response
}

func (t *answerTx) Respond(res *sip.Response) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent = append(t.sent, res)
	return nil
}

// FuzzPresenceRequest runs PUBLISH and SUBSCRIBE requests of any shape
// through the handlers, as sent by an authenticated device: each gets
// exactly one answer, and none panics.
func FuzzPresenceRequest(f *testing.F) {
	doc, _ := (&pidf.Document{Entity: "pres:alice@example.org", Tuples: []pidf.Tuple{{Device: "laptop", State: pidf.Away, Note: "n"}}}).Marshal()
	head := "sip:alice@example.org SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bK1\r\nFrom: <sip:alice@example.org>;tag=a\r\n" +
		"Call-ID: c1\r\nMax-Forwards: 70\r\n"
	for _, s := range []string{
		"PUBLISH " + head + "To: <sip:alice@example.org>\r\nCSeq: 1 PUBLISH\r\nEvent: presence\r\nExpires: 600\r\nContent-Type: application/pidf+xml\r\nContent-Length: " + strconv.Itoa(len(doc)) + "\r\n\r\n" + string(doc),
		"PUBLISH " + head + "To: <sip:alice@example.org>\r\nCSeq: 2 PUBLISH\r\nEvent: presence\r\nSIP-If-Match: 00ff\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
		"SUBSCRIBE " + head + "To: <sip:alice@example.org>\r\nCSeq: 1 SUBSCRIBE\r\nEvent: presence\r\nContact: <sip:alice@example.org;transport=tls>\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n",
		"SUBSCRIBE " + head + "To: <sip:bob@example.org>;tag=zz\r\nCSeq: 2 SUBSCRIBE\r\nEvent: presence;id=1\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
		"SUBSCRIBE " + head + "To: <sip:bob@example.org>\r\nCSeq: 1 SUBSCRIBE\r\nEvent: presence\r\nContact: <sip:alice@example.org>\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	old := presenceEvery
	presenceEvery = time.Hour
	defer func() { presenceEvery = old }()
	// The rig without its listener: the handlers are called directly.
	db, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "p.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	r := &rig{st: db, db: db, t: &testing.T{}}
	r.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &r.caKey.PublicKey, r.caKey)
	r.ca, _ = x509.ParseCertificate(der)
	r.account("alice", "laptop")
	r.account("bob", "desk")
	r.friends("alice", "bob")
	p, err := New(Config{Domain: domain, Store: db, Auth: certAuth{db}, NonceKey: []byte("k"), TLS: &tls.Config{}})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.ctx = ctx
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	p.ln = newPeerListener(ln, &tls.Config{}, Limits{}, true, p.log)
	// The device is known by a connection the handlers look up by source
	// address, as after a TLS handshake.
	c := r.issue("alice@example.org/laptop", nil)
	cert, _ := x509.ParseCertificate(c.Certificate[0])
	const src = "127.0.0.1:9"
	p.ln.conns[src] = &peerConn{cert: cert}
	handlers := map[sip.RequestMethod]func(*sip.Request, sip.ServerTransaction){sip.PUBLISH: p.onPublish, sip.SUBSCRIBE: p.onSubscribe}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := sip.ParseMessage(b)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok || handlers[req.Method] == nil {
			return
		}
		req.SetSource(src)
		tx := &answerTx{}
		handlers[req.Method](req, tx)
		if len(tx.sent) != 1 {
			t.Fatalf("%d answers to %q", len(tx.sent), b)
		}
		if code := tx.sent[0].StatusCode; code >= 500 {
			t.Fatalf("%d %s for %q", code, tx.sent[0].Reason, b)
		}
	})
}
