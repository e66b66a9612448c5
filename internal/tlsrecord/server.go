package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
)

// ErrKept is wrapped by TakeOver's errors for a connection that stays
// with crypto/tls (TLS 1.2, or anything that rules out taking it over).
var ErrKept = errors.New("connection kept by crypto/tls")

// ServerConfig prepares a server configuration for Server: every
// connection gets a clone whose KeyLogWriter captures that connection's
// application traffic secrets (and still passes the lines on to conf's
// own KeyLogWriter, if any). A GetConfigForClient of conf still chooses
// the configuration first.
func ServerConfig(conf *tls.Config) *tls.Config {
	c := conf.Clone()
	c.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		base := conf
		if conf.GetConfigForClient != nil {
			r, err := conf.GetConfigForClient(hello)
			if err != nil {
				return nil, err
			}
			if r != nil {
				base = r
			}
		}
		hc, ok := hello.Conn.(*handshakeConn)
		if !ok {
			return base, nil
		}
		cc := base.Clone()
		hc.keys.next = base.KeyLogWriter
		cc.KeyLogWriter = &hc.keys
		hc.configured = true
		// With tickets, the server sends NewSessionTicket under its
		// application key during the handshake, and the write sequence
		// number would not start at 0.
		hc.noTickets = cc.SessionTicketsDisabled
		return cc, nil
	}
	return c
}

// Server is a server connection whose record layer may be taken over
// after crypto/tls has done its handshake.
type Server struct {
	hc *handshakeConn
	tc *tls.Conn
}

// NewServer starts a server connection on raw; conf must come from
// ServerConfig.
func NewServer(raw net.Conn, conf *tls.Config) *Server {
	hc := &handshakeConn{Conn: raw}
	return &Server{hc: hc, tc: tls.Server(hc, conf)}
}

// TLS is the crypto/tls connection, for the handshake, and for the whole
// connection when TakeOver declines.
func (s *Server) TLS() *tls.Conn { return s.tc }

// TakeOver returns a Conn carrying the connection on from its completed
// handshake. The error wraps ErrKept when the connection must stay with
// crypto/tls: not TLS 1.3, a suite not implemented here, secrets not
// captured, or session tickets on. The tls.Conn must not be used for
// data after a successful TakeOver.
func (s *Server) TakeOver() (*Conn, error) {
	defer s.hc.keys.wipe()
	cs := s.tc.ConnectionState()
	switch {
	case !cs.HandshakeComplete:
		return nil, fmt.Errorf("%w: handshake not complete", ErrKept)
	case cs.Version != tls.VersionTLS13:
		return nil, fmt.Errorf("%w: TLS version %#04x", ErrKept, cs.Version)
	case !s.hc.configured || !s.hc.noTickets:
		return nil, fmt.Errorf("%w: session tickets may have been sent", ErrKept)
	case cs.DidResume:
		return nil, fmt.Errorf("%w: resumed session", ErrKept)
	case s.hc.keys.client == nil || s.hc.keys.server == nil:
		return nil, fmt.Errorf("%w: traffic secrets not captured", ErrKept)
	case s.hc.hdrN != 0:
		// crypto/tls stopped inside a record: it holds bytes we do not.
		return nil, fmt.Errorf("%w: handshake ended inside a record", ErrKept)
	}
	if _, err := suiteByID(cs.CipherSuite); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKept, err)
	}
	// The server reads with the client's secret and writes with its own.
	return New(s.hc.Conn, cs.CipherSuite, s.hc.keys.client, s.hc.keys.server)
}

// handshakeConn is the connection crypto/tls does its handshake on: each
// Read returns at most the rest of the current record (its 5-byte header
// first, then its body), so crypto/tls never buffers past the client's
// Finished into the first application data records, which are then ours
// to read from the socket.
type handshakeConn struct {
	net.Conn
	hdr  [headerLen]byte
	hdrN int
	left int // body bytes of the current record not yet read

	keys       keyLog
	configured bool
	noTickets  bool
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if c.hdrN < headerLen {
		n, err := c.Conn.Read(b[:min(len(b), headerLen-c.hdrN)])
		copy(c.hdr[c.hdrN:], b[:n])
		c.hdrN += n
		if c.hdrN == headerLen {
			c.left = int(binary.BigEndian.Uint16(c.hdr[3:]))
			if c.left == 0 {
				c.hdrN = 0
			}
		}
		return n, err
	}
	n, err := c.Conn.Read(b[:min(len(b), c.left)])
	c.left -= n
	if c.left == 0 {
		c.hdrN = 0
	}
	return n, err
}

// keyLog takes crypto/tls's key log lines for one connection (the NSS
// key log format: label, client random, secret, in hex) and keeps the
// application traffic secrets of generation 0 (RFC 8446 §7.1). Nothing is
// written anywhere unless conf had a KeyLogWriter of its own.
type keyLog struct {
	next           io.Writer
	client, server []byte
}

func (k *keyLog) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) == 3 {
		var dst *[]byte
		switch string(f[0]) {
		case "CLIENT_TRAFFIC_SECRET_0":
			dst = &k.client
		case "SERVER_TRAFFIC_SECRET_0":
			dst = &k.server
		}
		if dst != nil {
			s := make([]byte, hex.DecodedLen(len(f[2])))
			if _, err := hex.Decode(s, f[2]); err != nil {
				return 0, fmt.Errorf("tlsrecord: key log line: %w", err)
			}
			*dst = s
		}
	}
	if k.next != nil {
		return k.next.Write(line)
	}
	return len(line), nil
}

func (k *keyLog) wipe() {
	clear(k.client)
	clear(k.server)
	k.client, k.server, k.next = nil, nil, nil
}
