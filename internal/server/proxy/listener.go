package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"sync"
	"time"
)

// peerListener hands sipgo TLS connections and remembers each connection's
// client certificate by remote address, because SIP requests carry only
// their source address up to the handlers.
type peerListener struct {
	net.Listener
	mu    sync.Mutex
	peers map[string]*x509.Certificate
}

func newPeerListener(ln net.Listener, conf *tls.Config) *peerListener {
	return &peerListener{Listener: tls.NewListener(ln, conf), peers: map[string]*x509.Certificate{}}
}

func (l *peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &peerConn{Conn: c, l: l}, nil
}

// peer returns the verified-by-handshake client certificate of the
// connection from addr, or nil.
func (l *peerListener) peer(addr string) *x509.Certificate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peers[addr]
}

type peerConn struct {
	net.Conn
	l    *peerListener
	once sync.Once
	err  error
}

// Read completes the handshake before the first byte reaches the SIP parser,
// so the certificate is known when the first request is handled.
func (c *peerConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		tc := c.Conn.(*tls.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if c.err = tc.HandshakeContext(ctx); c.err != nil {
			return
		}
		if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
			c.l.mu.Lock()
			c.l.peers[c.RemoteAddr().String()] = cs.PeerCertificates[0]
			c.l.mu.Unlock()
		}
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

func (c *peerConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.peers, c.RemoteAddr().String())
	c.l.mu.Unlock()
	return c.Conn.Close()
}
