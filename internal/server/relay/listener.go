package relay

import (
	"net"
	"sync"
	"time"
)

// Bounds on the TCP and TLS listeners, which pion/turn serves without any:
// a client holding connections it does not use must not exhaust the
// process's file descriptors.
const (
	maxStreamConns          = 10000
	maxStreamConnsPerSource = 64
	// streamIdle closes a connection that sent nothing for longer than an
	// allocation lives without a Refresh (RFC 8656 §7.2: 10 minutes by
	// default): a client with a live allocation always sends within it.
	streamIdle = 11 * time.Minute
)

// boundedListener caps connections in total and per source IP and closes
// idle ones.
type boundedListener struct {
	net.Listener
	max, perSource int
	idle           time.Duration

	mu     sync.Mutex
	total  int
	source map[string]int
}

func bound(ln net.Listener) *boundedListener {
	return &boundedListener{Listener: ln, max: maxStreamConns, perSource: maxStreamConnsPerSource, idle: streamIdle, source: map[string]int{}}
}

// Accept returns the next connection within the caps; those beyond are
// closed at once.
func (l *boundedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		ok := l.total < l.max && l.source[host] < l.perSource
		if ok {
			l.total++
			l.source[host]++
		}
		l.mu.Unlock()
		if !ok {
			c.Close()
			continue
		}
		return &idleConn{Conn: c, l: l, host: host}, nil
	}
}

func (l *boundedListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.source[host]--; l.source[host] <= 0 {
		delete(l.source, host)
	}
}

// idleConn pushes its read deadline on before each read and gives its
// slot back once closed.
type idleConn struct {
	net.Conn
	l    *boundedListener
	host string
	once sync.Once
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.l.idle))
	return c.Conn.Read(p)
}

func (c *idleConn) Close() error {
	c.once.Do(func() { c.l.release(c.host) })
	return c.Conn.Close()
}
