package proxy

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/tlsrecord"
)

// Limits of the SIP listener: what a client may hold and for how long.
type Limits struct {
	MaxConns          int           // connections held in total
	MaxConnsPerSource int           // per source IP address
	HandshakeTimeout  time.Duration // TLS handshake, from accept
	ReadTimeout       time.Duration // a message must arrive whole within it from its first byte
	IdleTimeout       time.Duration // no message (keep-alives do not count), on a connection without a live registration
	WriteTimeout      time.Duration // a write the peer does not take in
}

// Default limits. A registered device refreshes its registration (PhoneX
// devices every 15 s) or sends CRLF keep-alives; its connection is kept
// while its binding lives, whatever IdleTimeout says.
const (
	DefaultMaxConns          = 10000
	DefaultMaxConnsPerSource = 200
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 10 * time.Second

	// keepGrace is how long past its binding's expiry a registered
	// connection is kept, for a refresh that comes late.
	keepGrace = 30 * time.Second
)

func init() {
	// sipgo gives every connection a read buffer of this size for its whole
	// life. The framing layer hands it whole messages, which its stream
	// parser takes in pieces of any size, so a small buffer suffices and
	// keeps idle connections cheap.
	sip.TransportBufferReadSize = readBuffer
}

// readBuffer is the size of sipgo's reads from a connection. sipgo skips a
// read made only of zero bytes (as if it were padding), so frame refuses a
// body with a run of zeros this long rather than let it stall the stream.
const readBuffer = 512

func (l *Limits) defaults() {
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	if l.MaxConnsPerSource <= 0 {
		l.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = DefaultReadTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = DefaultWriteTimeout
	}
}

// peerListener hands sipgo TLS connections whose every message has passed
// the framing layer, and remembers each connection by remote address,
// because SIP requests carry only their source address up to the handlers.
type peerListener struct {
	guard *guardListener
	lim   Limits
	conf  *tls.Config
	// takeover: TLS 1.3 connections leave crypto/tls after their
	// handshake for internal/tlsrecord, which holds far less per idle
	// connection; conf then comes from tlsrecord.ServerConfig.
	takeover bool
	log      *slog.Logger
	mu       sync.Mutex
	conns    map[string]*peerConn
	// intercept, if set, sees every framed message first and reports
	// whether it took it (the node's own MESSAGE path, direct.go).
	intercept func(c *peerConn, lines []string, body []byte) bool
}

func newPeerListener(ln net.Listener, conf *tls.Config, lim Limits, takeover bool, log *slog.Logger) *peerListener {
	lim.defaults()
	if takeover {
		conf = tlsrecord.ServerConfig(conf)
	}
	return &peerListener{guard: newGuardListener(ln, lim.MaxConns, lim.MaxConnsPerSource, log), lim: lim, conf: conf, takeover: takeover,
		log: log, conns: map[string]*peerConn{}}
}

func (l *peerListener) Addr() net.Addr { return l.guard.Addr() }
func (l *peerListener) Close() error   { return l.guard.Close() }

func (l *peerListener) Accept() (net.Conn, error) {
	c, err := l.guard.Accept()
	if err != nil {
		return nil, err
	}
	// The handshake must end within its bound even if sipgo never reads.
	c.SetDeadline(time.Now().Add(l.lim.HandshakeTimeout))
	if l.takeover {
		s := tlsrecord.NewServer(c, l.conf)
		return &peerConn{tc: s.TLS(), hs: s.TLS(), srv: s, raw: c, l: l}, nil
	}
	tc := tls.Server(c, l.conf)
	return &peerConn{tc: tc, hs: tc, raw: c, l: l}, nil
}

// peer returns the verified-by-handshake client certificate of the
// connection from addr, or nil.
func (l *peerListener) peer(addr string) *x509.Certificate {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.conns[addr]; c != nil {
		return c.cert
	}
	return nil
}

// keep spares the connection from addr the idle timeout until t: it
// carries a registration that lives until then. A shorter t (the binding
// removed) wakes the reader, which waits with the old deadline.
func (l *peerListener) keep(addr string, t time.Time) {
	l.mu.Lock()
	c := l.conns[addr]
	l.mu.Unlock()
	if c != nil && c.keepUntil.Swap(t.UnixNano()) > t.UnixNano() {
		c.tc.SetReadDeadline(time.Now())
	}
}

// peerConn is one SIP over TLS connection. Its Read hands sipgo one whole,
// validated message at a time, answers refused requests itself, answers
// CRLF keep-alives, and enforces the read and idle timeouts.
type peerConn struct {
	// tc carries the connection: the tls.Conn, or after the handshake of
	// a TLS 1.3 connection on a takeover listener, a tlsrecord.Conn. It
	// changes only inside once, before the connection is registered;
	// Close reads it under mu.
	tc  net.Conn
	raw net.Conn
	l   *peerListener
	// hs and srv serve the handshake and are dropped after it, so that
	// a taken-over connection keeps nothing of crypto/tls.
	hs  *tls.Conn
	srv *tlsrecord.Server
	mu  sync.Mutex

	once      sync.Once
	err       error
	cert      *x509.Certificate
	keepUntil atomic.Int64 // unix ns; idle is allowed until then
	lastMsg   time.Time    // end of the handshake or the last message; keep-alives do not count

	// waiting holds the node's own MESSAGEs on this connection that
	// wait for the device's answer, by branch; closed: no more will.
	// Both under mu (direct.go).
	waiting map[string]chan int
	closed  bool

	in    []byte   // received, not yet framed; nil between messages
	out   []byte   // a framed message not yet handed to sipgo
	first [64]byte // reads between messages, so an idle connection holds no buffer
	// inBuf and outBuf are the pooled buffers behind in and out, if they
	// are: each goes back to msgBufs once what it holds is consumed.
	inBuf, outBuf *[]byte
}

// msgBufs holds buffers for messages being received: a message borrows
// one from its first byte until sipgo has read it, so neither a busy
// connection allocates per message nor an idle one holds a buffer.
var msgBufs = sync.Pool{New: func() any { b := make([]byte, 0, msgBufSize); return &b }}

const msgBufSize = 4096

func putMsgBuf(b **[]byte) {
	if *b != nil {
		**b = (**b)[:0]
		msgBufs.Put(*b)
		*b = nil
	}
}

// takeIn makes in a pooled buffer holding data.
func (c *peerConn) takeIn(data []byte) {
	c.inBuf = msgBufs.Get().(*[]byte)
	c.in = append((*c.inBuf)[:0], data...)
}

var errIdle = errors.New("sip connection idle")

func (c *peerConn) handshake() error {
	c.once.Do(func() {
		// The handshake runs on a goroutine of its own: its deep crypto
		// stack is freed when it ends, instead of staying with the
		// connection's reader for the connection's life.
		done := make(chan shaken, 1)
		hs, srv := c.hs, c.srv
		c.hs, c.srv = nil, nil
		go func() { done <- shake(hs, srv) }()
		r := <-done
		if c.err = r.err; c.err != nil {
			return
		}
		c.cert = r.cert
		if r.kept != nil {
			c.l.log.Debug("sip connection kept by crypto/tls", "source", c.RemoteAddr().String(), "reason", r.kept)
		}
		if r.rc != nil {
			c.mu.Lock()
			c.tc = r.rc
			c.mu.Unlock()
		}
		c.l.mu.Lock()
		c.l.conns[c.RemoteAddr().String()] = c
		c.l.mu.Unlock()
		c.tc.SetDeadline(time.Time{})
		c.lastMsg = time.Now()
	})
	return c.err
}

// shaken is the outcome of a handshake: the client's certificate, if it
// sent one, and the record layer that carries the connection on if it
// was taken over.
type shaken struct {
	cert *x509.Certificate
	rc   *tlsrecord.Conn
	kept error // why a takeover listener left the connection with crypto/tls
	err  error
}

// shake does the handshake and, on a takeover listener, hands a TLS 1.3
// connection over to tlsrecord.
func shake(hs *tls.Conn, srv *tlsrecord.Server) shaken {
	var r shaken
	if r.err = hs.Handshake(); r.err != nil {
		return r
	}
	if certs := hs.ConnectionState().PeerCertificates; len(certs) > 0 {
		r.cert = certs[0]
	}
	if srv == nil {
		return r
	}
	rc, err := srv.TakeOver()
	if err != nil {
		if !errors.Is(err, tlsrecord.ErrKept) {
			r.err = err
		}
		r.kept = err
		return r
	}
	r.rc = rc
	// crypto/tls parsed the certificate in place, in its handshake
	// read buffer, which the certificate would keep alive for the
	// connection's life (2.5 KiB, more than the certificate itself):
	// parse a copy of its DER, which is all the connection keeps.
	if r.cert != nil {
		if cert, err := x509.ParseCertificate(bytes.Clone(r.cert.Raw)); err == nil {
			r.cert = cert
		}
	}
	return r
}

// Read completes the handshake before the first byte reaches the SIP parser,
// so the certificate is known when the first request is handled.
func (c *peerConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	if len(c.out) == 0 {
		msg, err := c.next()
		if err != nil {
			return 0, err
		}
		c.out = msg
	}
	n := copy(b, c.out)
	c.out = c.out[n:]
	if len(c.out) == 0 {
		c.out = nil
		putMsgBuf(&c.outBuf)
	}
	return n, nil
}

// next reads until one whole valid message is framed.
func (c *peerConn) next() ([]byte, error) {
	var started time.Time
	for {
		c.in = c.keepAlive(c.in)
		if c.in == nil {
			putMsgBuf(&c.inBuf)
		}
		if c.in == nil && !started.IsZero() {
			started = time.Time{}
		}
		if len(c.in) > 0 {
			if started.IsZero() {
				started = time.Now()
			}
			n, lines, bodyAt, err := frameLines(c.in)
			if err == nil {
				c.lastMsg = time.Now()
				msg := c.in[:n:n]
				c.outBuf, c.inBuf = c.inBuf, nil
				if rest := c.in[n:]; len(rest) > 0 {
					c.takeIn(rest)
				} else {
					c.in = nil
				}
				if c.l.intercept != nil {
					if c.l.intercept(c, lines, msg[bodyAt:]) {
						putMsgBuf(&c.outBuf)
						started = time.Time{}
						continue
					}
				}
				return msg, nil
			}
			var fe *FrameError
			if errors.As(err, &fe) {
				if !bytes.HasPrefix(c.in, []byte("SIP/")) {
					c.write(refusal(c.in, fe))
				}
				c.l.log.Debug("sip message refused", "source", c.RemoteAddr().String(), "status", fe.Status, "reason", fe.Reason)
				if fe.Length == 0 {
					return nil, fmt.Errorf("sip framing from %s: %w", c.RemoteAddr(), err)
				}
				c.in = append([]byte(nil), c.in[fe.Length:]...)
				putMsgBuf(&c.inBuf)
				if len(c.in) == 0 {
					c.in = nil
				}
				started, c.lastMsg = time.Time{}, time.Now()
				continue
			}
		}
		keep := c.keepUntil.Load()
		deadline := c.deadline(started, keep)
		c.tc.SetReadDeadline(deadline)
		if started.IsZero() && c.keepUntil.Load() != keep {
			continue // a registration changed while the deadline was set
		}
		var n int
		var err error
		if c.in == nil {
			n, err = c.tc.Read(c.first[:])
			if n > 0 {
				c.takeIn(c.first[:n])
			}
		} else {
			if cap(c.in)-len(c.in) < 512 {
				// Past the pooled size: a buffer of its own, the pooled
				// one back.
				c.in = slices.Grow(c.in, len(c.in)+1024)
				putMsgBuf(&c.inBuf)
			}
			n, err = c.tc.Read(c.in[len(c.in):cap(c.in)])
			c.in = c.in[:len(c.in)+n]
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A registration handled while this read waited changes
				// the deadline it was given.
				if time.Now().Before(c.deadline(started, c.keepUntil.Load())) {
					continue
				}
				if started.IsZero() {
					return nil, fmt.Errorf("%s: %w", c.RemoteAddr(), errIdle)
				}
				c.l.log.Debug("sip request too slow", "source", c.RemoteAddr().String())
				return nil, fmt.Errorf("sip read from %s: request not whole within %v", c.RemoteAddr(), c.l.lim.ReadTimeout)
			}
			if errors.Is(err, io.EOF) {
				return nil, io.EOF
			}
			return nil, err
		}
	}
}

// deadline is when the current read must end: the read timeout from a
// message's first byte, else the idle timeout from the last message, or
// the end of the connection's registration (keep, unix ns) if later.
// CRLF keep-alives are answered but keep only a registered connection.
func (c *peerConn) deadline(started time.Time, keep int64) time.Time {
	if !started.IsZero() {
		return started.Add(c.l.lim.ReadTimeout)
	}
	d := c.lastMsg.Add(c.l.lim.IdleTimeout)
	if k := time.Unix(0, keep); k.After(d) {
		d = k
	}
	return d
}

// keepAlive consumes CRLF keep-alives between messages: a double CRLF
// ping is answered with a single CRLF pong (RFC 5626 §4.4.1), a single
// CRLF (a pong, or a client's own keep-alive) is dropped.
func (c *peerConn) keepAlive(in []byte) []byte {
	for len(in) >= 2 && in[0] == '\r' && in[1] == '\n' {
		if len(in) >= 4 && in[2] == '\r' && in[3] == '\n' {
			c.write([]byte("\r\n"))
			in = in[4:]
			continue
		}
		if len(in) == 3 && in[2] == '\r' {
			break // the rest of a ping is on its way
		}
		in = in[2:]
	}
	if len(in) == 0 {
		return nil
	}
	return in
}

func (c *peerConn) write(b []byte) {
	c.tc.SetWriteDeadline(time.Now().Add(c.l.lim.WriteTimeout))
	c.tc.Write(b)
}

// Write bounds every write, so a peer that stops reading cannot hold a
// delivery forever.
func (c *peerConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	c.tc.SetWriteDeadline(time.Now().Add(c.l.lim.WriteTimeout))
	return c.tc.Write(b)
}

func (c *peerConn) Close() error {
	c.endWaits()
	c.l.mu.Lock()
	if c.l.conns[c.RemoteAddr().String()] == c {
		delete(c.l.conns, c.RemoteAddr().String())
	}
	c.l.mu.Unlock()
	c.mu.Lock()
	tc := c.tc
	c.mu.Unlock()
	return tc.Close()
}

func (c *peerConn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *peerConn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *peerConn) SetDeadline(t time.Time) error      { return nil }
func (c *peerConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *peerConn) SetWriteDeadline(t time.Time) error { return nil }
