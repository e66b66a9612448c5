// Package relay is the cluster's STUN and TURN server (RFC 8489, RFC 8656),
// built on pion/turn v5, with TURN REST credentials (the format coturn
// accepts with use-auth-secret), a per-user allocation cap and token-bucket
// bandwidth quotas on relayed bytes. It relays whatever the devices send
// (SRTP, ZRTP, ICE checks): it holds no media keys.
package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pion/transport/v5/reuseport"
	"github.com/pion/turn/v5"
)

// Config is one relay's settings.
type Config struct {
	Realm string // the cluster's domain

	// Listeners; an empty address disables that transport. UDP and TCP
	// usually share a port (3478), TLS has its own (5349).
	UDPAddr string
	TCPAddr string
	TLSAddr string
	TLS     *tls.Config // certificate for TLSAddr

	// ExternalIP is the address put in XOR-RELAYED-ADDRESS: the public
	// address of this host. Nil: the UDP (else TCP) listener's IP.
	ExternalIP net.IP
	// RelayIP is the local address relayed sockets bind to. Nil: the
	// listener's IP, or every address if that is unspecified.
	RelayIP net.IP
	// Ports of relayed sockets, inclusive.
	MinPort, MaxPort uint16

	Secret []byte // shared secret of the TURN REST credentials

	// Quotas. Zero: no limit.
	MaxAllocationsPerUser int
	AllocationRate        int // relayed bytes per second, per allocation
	UserRate              int // relayed bytes per second, all of a user's allocations

	// Threads is the number of UDP sockets bound to the UDP address with
	// SO_REUSEPORT, each with its own reader; 0 means 1.
	Threads int

	Log *slog.Logger
	Now func() time.Time // nil: time.Now
}

// Server is a running relay.
type Server struct {
	cfg    Config
	turn   *turn.Server
	udp    net.Addr
	tcp    net.Addr
	tls    net.Addr
	quotas *quotas
	chans  *channels
	udpLns []*udpListener
}

// Start opens the listeners and serves until Close.
func Start(cfg Config) (*Server, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("relay: shared secret shorter than 16 bytes")
	}
	if cfg.MinPort == 0 || cfg.MaxPort < cfg.MinPort {
		return nil, fmt.Errorf("relay: port range %d-%d", cfg.MinPort, cfg.MaxPort)
	}
	if cfg.UDPAddr == "" && cfg.TCPAddr == "" && cfg.TLSAddr == "" {
		return nil, errors.New("relay: no listener configured")
	}
	s := &Server{cfg: cfg, quotas: newQuotas(cfg.MaxAllocationsPerUser, cfg.AllocationRate, cfg.UserRate), chans: newChannels(cfg.Log)}
	var closers []func() error
	fail := func(err error) (*Server, error) {
		for _, c := range closers {
			c()
		}
		return nil, err
	}

	var pcs []turn.PacketConnConfig
	var lcs []turn.ListenerConfig
	listenIP := net.IP(nil)
	if cfg.UDPAddr != "" {
		conns, err := listenUDP(cfg.UDPAddr, max(cfg.Threads, 1))
		if err != nil {
			return fail(err)
		}
		for _, c := range conns {
			closers = append(closers, c.Close)
		}
		s.udp = conns[0].LocalAddr()
		listenIP = s.udp.(*net.UDPAddr).IP
		for _, c := range conns {
			l := newUDPListener(c, s.chans)
			s.udpLns = append(s.udpLns, l)
			pcs = append(pcs, turn.PacketConnConfig{PacketConn: l})
		}
	}
	if cfg.TCPAddr != "" {
		raw, err := listenTCP(cfg.TCPAddr, cfg.UDPAddr, s.udp)
		if err != nil {
			return fail(fmt.Errorf("relay tcp listener: %w", err))
		}
		closers = append(closers, raw.Close)
		ln := bound(raw)
		s.tcp = ln.Addr()
		if listenIP == nil {
			listenIP = s.tcp.(*net.TCPAddr).IP
		}
		lcs = append(lcs, turn.ListenerConfig{Listener: ln})
	}
	if cfg.TLSAddr != "" {
		if cfg.TLS == nil {
			return fail(errors.New("relay: TLS listener without a certificate"))
		}
		raw, err := net.Listen("tcp", cfg.TLSAddr)
		if err != nil {
			return fail(fmt.Errorf("relay tls listener: %w", err))
		}
		closers = append(closers, raw.Close)
		// The bounds sit under TLS, so pion/turn still gets a *tls.Conn
		// and completes the handshake within its own 10 s.
		ln := tls.NewListener(bound(raw), cfg.TLS)
		s.tls = ln.Addr()
		if listenIP == nil {
			listenIP = s.tls.(*net.TCPAddr).IP
		}
		lcs = append(lcs, turn.ListenerConfig{Listener: ln})
	}

	ext := cfg.ExternalIP
	if ext == nil {
		ext = listenIP
	}
	if ext == nil || ext.IsUnspecified() {
		return fail(errors.New("relay: listening on every address needs the external address (relay_external_ip)"))
	}
	bind := cfg.RelayIP
	if bind == nil {
		bind = listenIP
	}
	if bind == nil {
		bind = net.IPv4zero
	}
	// One generator per UDP listener, so that an allocation's relayed
	// socket knows the socket its client talks to (the fast path's two
	// ends); one for the TCP and TLS listeners.
	gen := func(l *udpListener) *generator {
		return &generator{
			RelayAddressGeneratorPortRange: turn.RelayAddressGeneratorPortRange{
				RelayAddress: ext, Address: bind.String(), MinPort: cfg.MinPort, MaxPort: cfg.MaxPort, MaxRetries: 40,
			},
			q: s.quotas, chans: s.chans, l: l,
		}
	}
	perm := permissions(ext)
	for i := range pcs {
		pcs[i].RelayAddressGenerator = gen(pcs[i].PacketConn.(*udpListener))
		pcs[i].PermissionHandler = perm
	}
	streams := gen(nil)
	for i := range lcs {
		lcs[i].RelayAddressGenerator = streams
		lcs[i].PermissionHandler = perm
	}
	ts, err := turn.NewServer(turn.ServerConfig{
		Realm:             cfg.Realm,
		AuthHandler:       s.auth,
		QuotaHandler:      s.quotas.admit,
		PacketConnConfigs: pcs,
		ListenerConfigs:   lcs,
		LoggerFactory:     slogFactory{cfg.Log},
		EventHandler:      turn.EventHandler{OnChannelCreated: s.chans.created, OnChannelDeleted: s.chans.deleted},
	})
	if err != nil {
		return fail(fmt.Errorf("relay: %w", err))
	}
	s.turn = ts
	return s, nil
}

// listenUDP binds n sockets to one address with SO_REUSEPORT, so that the
// kernel spreads the clients over n readers.
func listenUDP(addr string, n int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{}
	if n > 1 {
		lc.Control = reuseport.Control
	}
	first, err := lc.ListenPacket(context.Background(), "udp", addr)
	if err != nil {
		return nil, fmt.Errorf("relay udp listener: %w", err)
	}
	growBuffers(first)
	conns := []*net.UDPConn{first.(*net.UDPConn)}
	bound := first.LocalAddr().String() // the port chosen, if addr asked for any
	for len(conns) < n {
		c, err := lc.ListenPacket(context.Background(), "udp", bound)
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, fmt.Errorf("relay udp listener %d: %w", len(conns), err)
		}
		growBuffers(c)
		conns = append(conns, c.(*net.UDPConn))
	}
	return conns, nil
}

// socketBuffer is the kernel buffer asked for on each UDP socket, so that
// bursts and the collector's pauses do not drop datagrams; Linux caps it at
// net.core.rmem_max and wmem_max.
const socketBuffer = 4 << 20

func growBuffers(c net.PacketConn) {
	if b, ok := c.(interface {
		SetReadBuffer(int) error
		SetWriteBuffer(int) error
	}); ok {
		b.SetReadBuffer(socketBuffer)
		b.SetWriteBuffer(socketBuffer)
	}
}

// listenTCP listens on addr; when addr is the UDP address with port 0, on
// the port UDP got if it is free, so that one port number serves both as
// on a fixed configuration.
func listenTCP(addr, udpAddr string, udp net.Addr) (net.Listener, error) {
	if h, p, err := net.SplitHostPort(addr); err == nil && p == "0" && addr == udpAddr && udp != nil {
		_, up, _ := net.SplitHostPort(udp.String())
		if ln, err := net.Listen("tcp", net.JoinHostPort(h, up)); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", addr)
}

// auth checks TURN REST credentials: the username must parse and not have
// expired; the key returned is the RFC 8489 §9.2.2 long-term key
// MD5(username:realm:password) with the password the node would issue, and
// pion/turn checks MESSAGE-INTEGRITY with it (an HMAC comparison in constant
// time).
func (s *Server) auth(ra *turn.RequestAttributes) (string, []byte, bool) {
	user, err := Check(ra.Username, s.cfg.Now())
	if err != nil {
		s.cfg.Log.Debug("relay credentials refused", "source", ra.SrcAddr, "err", err)
		return "", nil, false
	}
	return user, turn.GenerateAuthKey(ra.Username, ra.Realm, Password(s.cfg.Secret, ra.Username)), true
}

// permissions refuses peers a relay must not reach: multicast, broadcast and
// unspecified addresses always, loopback unless the relay itself is on
// loopback (the quick start), so that the relay cannot be turned against
// services listening only on the host itself.
func permissions(ext net.IP) turn.PermissionHandler {
	loopbackOK := ext.IsLoopback()
	return func(_ net.Addr, peer net.IP) bool {
		switch {
		case peer.IsUnspecified(), peer.IsMulticast(), peer.Equal(net.IPv4bcast):
			return false
		case peer.IsLoopback():
			return loopbackOK
		}
		return true
	}
}

// UDPAddr, TCPAddr and TLSAddr are the listeners' addresses (nil if off).
func (s *Server) UDPAddr() net.Addr { return s.udp }
func (s *Server) TCPAddr() net.Addr { return s.tcp }
func (s *Server) TLSAddr() net.Addr { return s.tls }

// Stats are the relay's counters.
type Stats struct {
	Allocations  int    // live relayed sockets
	DroppedBytes uint64 // relayed bytes dropped by a bandwidth quota
	Refused      uint64 // allocations refused by the per-user cap
	Allocated    uint64 // allocations made since start
	Forwarded    uint64 // datagrams relayed on bound channels by the batched path
	SendFailed   uint64 // relayed datagrams the kernel refused to send
}

// Stats reports the counters.
func (s *Server) Stats() Stats {
	st := s.quotas.stats()
	st.Forwarded, st.SendFailed = s.chans.forwarded.Load(), s.chans.sendFails.Load()
	return st
}

// Close stops the relay and its allocations.
func (s *Server) Close() error { return s.turn.Close() }

// URLs are the TURN URIs (RFC 7065) of a relay reachable at host, one per
// running transport, and its STUN URI (RFC 7064).
func (s *Server) URLs(host string) (turnURLs, stunURLs []string) {
	port := func(a net.Addr) string {
		_, p, _ := net.SplitHostPort(a.String())
		return p
	}
	hp := func(a net.Addr) string { return net.JoinHostPort(host, port(a)) }
	if s.udp != nil {
		turnURLs = append(turnURLs, "turn:"+hp(s.udp)+"?transport=udp")
		stunURLs = append(stunURLs, "stun:"+hp(s.udp))
	}
	if s.tcp != nil {
		turnURLs = append(turnURLs, "turn:"+hp(s.tcp)+"?transport=tcp")
	}
	if s.tls != nil {
		turnURLs = append(turnURLs, "turns:"+hp(s.tls)+"?transport=tcp")
	}
	return turnURLs, stunURLs
}

// Describe is the listener line phonexd prints.
func (s *Server) Describe() string {
	line := "relay:"
	for _, x := range []struct {
		name string
		a    net.Addr
	}{{"udp", s.udp}, {"tcp", s.tcp}, {"tls", s.tls}} {
		if x.a != nil {
			line += " " + x.name + " " + x.a.String()
		}
	}
	return line + " (STUN and TURN, realm " + s.cfg.Realm + ", relayed ports " +
		strconv.Itoa(int(s.cfg.MinPort)) + "-" + strconv.Itoa(int(s.cfg.MaxPort)) + ")"
}

// generator allocates relayed UDP sockets in the port range and wraps each
// in the quotas and the batched path; relayed TCP (RFC 6062) is not
// offered.
type generator struct {
	turn.RelayAddressGeneratorPortRange
	q     *quotas
	chans *channels
	l     *udpListener // the clients' listener; nil for TCP and TLS
}

var errNoTCPRelay = errors.New("relay: TCP allocations (RFC 6062) are not offered")

func (g *generator) AllocatePacketConn(c turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	lease, err := g.q.take(c.UserID)
	if err != nil {
		return nil, nil, err
	}
	conn, addr, err := g.RelayAddressGeneratorPortRange.AllocatePacketConn(c)
	if err != nil {
		lease.release()
		return nil, nil, err
	}
	growBuffers(conn)
	if u, ok := conn.(*net.UDPConn); ok {
		rc := newRelayConn(u, addr, lease, g.l, g.chans)
		g.chans.add(rc)
		return rc, addr, nil
	}
	return &limitedConn{PacketConn: conn, lease: lease}, addr, nil
}

func (g *generator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errNoTCPRelay
}

func (g *generator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errNoTCPRelay
}

// limitedConn is a relayed socket under its allocation's and its user's
// token buckets: what exceeds them is dropped, as a congested link would.
type limitedConn struct {
	net.PacketConn
	lease *lease
	once  sync.Once
}

// ReadFrom returns the next datagram from a peer that the quotas admit.
func (c *limitedConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(p)
		if err != nil || c.lease.allow(n) {
			return n, from, err
		}
	}
}

// WriteTo sends a datagram to a peer if the quotas admit it.
func (c *limitedConn) WriteTo(p []byte, to net.Addr) (int, error) {
	if !c.lease.allow(len(p)) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, to)
}

func (c *limitedConn) Close() error {
	c.once.Do(c.lease.release)
	return c.PacketConn.Close()
}
