package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// guardListener is the SIP port's accept side: it survives resource
// exhaustion and caps connections per source address and in total, before a
// single byte of TLS is spent on them.
type guardListener struct {
	net.Listener
	max, perSource int
	log            *slog.Logger

	mu       sync.Mutex
	total    int
	bySource map[string]int
	refused  int       // connections refused since the last log line
	loggedAt time.Time // of the last log line about refusals
}

func newGuardListener(ln net.Listener, max, perSource int, log *slog.Logger) *guardListener {
	return &guardListener{Listener: ln, max: max, perSource: perSource, log: log, bySource: map[string]int{}}
}

// temporary reports whether an accept error passes with time: out of file
// descriptors or buffers, or a connection reset before it was accepted.
func temporary(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Accept returns the next connection within the caps. Like net/http's
// server, it waits and tries again after a temporary error (5 ms doubling to
// 1 s) instead of failing: a flood of connections that exhausts the file
// descriptors must not stop the node.
func (l *guardListener) Accept() (net.Conn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !temporary(err) {
				return nil, err
			}
			if delay == 0 {
				delay = 5 * time.Millisecond
				l.log.Warn("sip accept failed; retrying", "err", err)
			} else {
				delay = min(2*delay, time.Second)
			}
			time.Sleep(delay)
			continue
		}
		delay = 0
		src := sourceOf(c.RemoteAddr().String())
		l.mu.Lock()
		ok := l.total < l.max && l.bySource[src] < l.perSource
		if ok {
			l.total++
			l.bySource[src]++
		} else {
			l.refused++
			if now := time.Now(); now.Sub(l.loggedAt) >= time.Minute {
				// One line per minute at most, so a flood cannot fill the log.
				l.log.Warn("sip connections refused over the limits", "source", src, "refused", l.refused,
					"total", l.total, "max", l.max, "per_source", l.perSource)
				l.refused, l.loggedAt = 0, now
			}
		}
		l.mu.Unlock()
		if !ok {
			c.Close()
			continue
		}
		return &guardConn{Conn: c, l: l, src: src}, nil
	}
}

func (l *guardListener) release(src string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.bySource[src]--; l.bySource[src] <= 0 {
		delete(l.bySource, src)
	}
}

// open is the number of connections held (tests, metrics).
func (l *guardListener) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

type guardConn struct {
	net.Conn
	l    *guardListener
	src  string
	once sync.Once
}

func (c *guardConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.Conn.Close()
}

// hostOf is the address without its port.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// sourceOf is what limits count per: the IPv4 address, or the /64 of an
// IPv6 address, since one subscriber usually holds a whole /64 (RFC 6177).
func sourceOf(addr string) string {
	h := hostOf(addr)
	ip, err := netip.ParseAddr(h)
	if err != nil {
		return h
	}
	if ip = ip.Unmap(); ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
