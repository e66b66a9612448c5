package relay

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// The relay's data path for ChannelData on UDP, in batches.
//
// pion/turn reads and writes one datagram per system call and handles each
// ChannelData message through its general request path. Here the sockets
// it is handed (the client-facing UDP listeners and the relayed sockets of
// allocations made through them) are wrappers that relay ChannelData on
// channels pion/turn has bound themselves. A listener reads a batch of
// datagrams per recvmmsg(2) and sends what it relays with one sendmmsg(2)
// per relayed socket once the batch is handled (before the next read could
// block, so a lightly loaded relay adds no delay); relayed sockets send to
// their clients through a queue per listener that gathers what arrives
// during a send into the next sendmmsg(2). Every
// other datagram (STUN requests, Send and Data indications, ChannelData on
// a channel not bound, anything malformed) is returned to pion/turn from
// ReadFrom as before.
//
// What the fast path does for a ChannelData message from a client is what
// pion/turn's handleChannelData does (RFC 8656 §12.6): find the allocation
// by the 5-tuple (client address, listener socket), the peer bound to the
// channel number on it, and send the data from the relayed socket to that
// peer; and for a datagram from a peer, what its packetConnHandler does
// when a channel is bound to the peer (RFC 8656 §11.3 and §12.7): send it
// to the client as ChannelData on that channel. The channel table is
// pion/turn's own, mirrored through its OnChannelCreated and
// OnChannelDeleted events, so a binding is forwarded on exactly while
// pion/turn holds it (ChannelBind with credentials and permission checks,
// expiry and allocation deletion all stay pion/turn's). The bandwidth
// quotas are taken on every datagram in both directions, as before.
// Bypassed are pion/turn's per-packet lookups (done here in the mirrored
// table instead) and its per-packet debug log lines.

const (
	inboundMTU    = 1600 // pion/turn's default: longer datagrams from clients are dropped
	listenerBatch = 64   // datagrams per system call on a client-facing socket
	// On a relayed socket: one. It carries one allocation's traffic (a
	// call's is 50 datagrams a second), so batches there would rarely hold
	// more than one datagram, while their buffers would cost memory on
	// every allocation.
	relayBatch     = 1
	channelPadding = 3 // room for ChannelData padding behind a payload
)

// channels is the registry of relayed sockets by relayed address, through
// which pion/turn's channel events reach the sockets they concern.
type channels struct {
	log *slog.Logger

	mu     sync.Mutex
	relays map[netip.AddrPort]*relayConn

	forwarded atomic.Uint64 // datagrams relayed by the fast path
	sendFails atomic.Uint64 // datagrams the kernel refused to send
}

func newChannels(log *slog.Logger) *channels {
	return &channels{log: log, relays: map[netip.AddrPort]*relayConn{}}
}

func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

func (g *channels) add(c *relayConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.relays[c.addr] = c
}

func (g *channels) remove(c *relayConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.relays[c.addr] == c {
		delete(g.relays, c.addr)
	}
}

func (g *channels) lookup(relayAddr net.Addr) *relayConn {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.relays[addrPort(relayAddr)]
}

// created is pion/turn's OnChannelCreated: a channel is bound on the
// allocation of client at relayAddr.
func (g *channels) created(client, _ net.Addr, _, _, _ string, relayAddr, peer net.Addr, ch uint16) {
	cu, ok1 := client.(*net.UDPAddr)
	pu, ok2 := peer.(*net.UDPAddr)
	if !ok1 || !ok2 {
		return // a client over TCP or TLS: pion/turn relays it
	}
	if c := g.lookup(relayAddr); c != nil {
		c.bind(cu, pu, ch)
	}
}

// deleted is pion/turn's OnChannelDeleted (expiry, or the allocation's end).
func (g *channels) deleted(client, _ net.Addr, _, _, _ string, relayAddr, peer net.Addr, ch uint16) {
	if c := g.lookup(relayAddr); c != nil {
		c.unbind(addrPort(client), addrPort(peer), ch)
	}
}

func (g *channels) sent(dropped int, err error) {
	if err != nil {
		g.sendFails.Add(uint64(dropped))
		g.log.Debug("relay send failed", "dropped", dropped, "err", err)
	}
}

type chanKey struct {
	client netip.AddrPort
	ch     uint16
}

type binding struct {
	relay *relayConn
	peer  *net.UDPAddr
}

// udpListener is a client-facing UDP socket as pion/turn reads it.
type udpListener struct {
	*net.UDPConn
	pc batcher
	r  *batchReader
	g  *channels
	q  *sendQueue // ChannelData to clients, from every relayed socket

	mu    sync.RWMutex
	bound map[chanKey]*binding

	// ChannelData of the current batch, for the relayed sockets; only the
	// reading goroutine touches these.
	out     []ipv4.Message
	outTo   []*relayConn
	nOut    int
	scratch []ipv4.Message
}

func newUDPListener(c *net.UDPConn, g *channels) *udpListener {
	pc := newBatcher(c)
	l := &udpListener{UDPConn: c, pc: pc, r: newBatchReader(pc, listenerBatch, 0, inboundMTU, 0), g: g,
		bound: map[chanKey]*binding{}, out: make([]ipv4.Message, listenerBatch), outTo: make([]*relayConn, listenerBatch),
		scratch: make([]ipv4.Message, 0, listenerBatch)}
	l.q = newSendQueue(pc, listenerBatch, chanHeader+inboundMTU+channelPadding, g.sent)
	for i := range l.out {
		l.out[i].Buffers = [][]byte{nil}
	}
	return l
}

// ReadFrom returns the next datagram that is not ChannelData on a bound
// channel; those it relays itself.
func (l *udpListener) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		m, err := l.r.read(l.flush)
		if err != nil {
			return 0, nil, err
		}
		if m.N >= inboundMTU || truncated(m) {
			continue // possibly cut short: pion/turn drops these too
		}
		if l.forward(m) {
			continue
		}
		// What was queued goes before pion/turn handles this datagram,
		// which may take a while (an Allocate checks credentials).
		l.flush()
		return copy(p, m.Buffers[0][:m.N]), m.Addr, nil
	}
}

func (l *udpListener) forward(m *ipv4.Message) bool {
	ch, data, err := parseChannelData(m.Buffers[0][:m.N])
	if err != nil {
		return false
	}
	l.mu.RLock()
	b := l.bound[chanKey{addrPort(m.Addr), ch}]
	l.mu.RUnlock()
	if b == nil {
		return false
	}
	if !b.relay.lease.allow(len(data)) {
		return true // over quota: dropped and counted
	}
	o := &l.out[l.nOut]
	o.Buffers[0], o.Addr = data, b.peer
	l.outTo[l.nOut] = b.relay
	l.nOut++
	l.g.forwarded.Add(1)
	return true
}

// flush sends the queued ChannelData payloads, one sendmmsg per relayed
// socket, in the order they came.
func (l *udpListener) flush() {
	for i := 0; i < l.nOut; i++ {
		rc := l.outTo[i]
		if rc == nil {
			continue
		}
		l.scratch = l.scratch[:0]
		for j := i; j < l.nOut; j++ {
			if l.outTo[j] == rc {
				l.scratch = append(l.scratch, l.out[j])
				l.outTo[j] = nil
			}
		}
		l.g.sent(writeAll(rc.pc, l.scratch))
	}
	for i := range l.nOut {
		l.out[i].Addr, l.out[i].Buffers[0] = nil, nil
	}
	l.nOut = 0
}

// relayConn is an allocation's relayed UDP socket under its quotas.
type relayConn struct {
	*net.UDPConn
	pc    batcher
	r     *batchReader
	lease *lease
	once  sync.Once
	g     *channels
	addr  netip.AddrPort // the relayed address, as pion/turn's events give it
	l     *udpListener   // the client's listener; nil for clients over TCP or TLS

	mu     sync.RWMutex
	closed bool
	client *net.UDPAddr
	peers  map[netip.AddrPort]uint16

	out  []ipv4.Message // ChannelData of the current batch, to the client
	nOut int
}

func newRelayConn(c *net.UDPConn, relayAddr net.Addr, lease *lease, l *udpListener, g *channels) *relayConn {
	pc := newBatcher(c)
	rc := &relayConn{UDPConn: c, pc: pc, r: newBatchReader(pc, relayBatch, chanHeader, inboundMTU, channelPadding),
		lease: lease, g: g, addr: addrPort(relayAddr), l: l, peers: map[netip.AddrPort]uint16{}}
	if l != nil {
		rc.out = make([]ipv4.Message, relayBatch)
		for i := range rc.out {
			rc.out[i].Buffers = [][]byte{nil}
		}
	}
	return rc
}

func (c *relayConn) bind(client, peer *net.UDPAddr, ch uint16) {
	if c.l == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.client == nil {
		c.client = client
	} else if addrPort(c.client) != addrPort(client) {
		return // not this allocation's client: leave it to pion/turn
	}
	c.peers[addrPort(peer)] = ch
	c.l.mu.Lock()
	c.l.bound[chanKey{addrPort(client), ch}] = &binding{relay: c, peer: peer}
	c.l.mu.Unlock()
}

func (c *relayConn) unbind(client, peer netip.AddrPort, ch uint16) {
	if c.l == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if got, ok := c.peers[peer]; ok && got == ch {
		delete(c.peers, peer)
	}
	k := chanKey{client, ch}
	c.l.mu.Lock()
	if b := c.l.bound[k]; b != nil && b.relay == c {
		delete(c.l.bound, k)
	}
	c.l.mu.Unlock()
}

// ReadFrom returns the next datagram from a peer that the quotas admit
// and that no channel is bound for; those on a channel it sends to the
// client itself.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		m, err := c.r.read(c.flush)
		if err != nil {
			return 0, nil, err
		}
		if truncated(m) {
			continue // longer than any datagram relayed: cut short, useless
		}
		if !c.lease.allow(m.N) {
			continue
		}
		if c.forward(m) {
			continue
		}
		c.flush()
		return copy(p, m.Buffers[0][:m.N]), m.Addr, nil
	}
}

func (c *relayConn) forward(m *ipv4.Message) bool {
	if c.l == nil {
		return false
	}
	c.mu.RLock()
	ch, ok := c.peers[addrPort(m.Addr)]
	to := c.client
	c.mu.RUnlock()
	if !ok {
		return false
	}
	o := &c.out[c.nOut]
	o.Buffers[0], o.Addr = frameChannelData(c.r.frame(), ch, m.N), to
	c.nOut++
	c.g.forwarded.Add(1)
	return true
}

func (c *relayConn) flush() {
	if c.nOut == 0 {
		return
	}
	c.l.q.send(c.out[:c.nOut])
	for i := range c.nOut {
		c.out[i].Addr, c.out[i].Buffers[0] = nil, nil
	}
	c.nOut = 0
}

// WriteTo sends a datagram to a peer if the quotas admit it (pion/turn's
// path: Send indications and ChannelData it relays itself).
func (c *relayConn) WriteTo(p []byte, to net.Addr) (int, error) {
	if !c.lease.allow(len(p)) {
		return len(p), nil
	}
	return c.UDPConn.WriteTo(p, to)
}

func (c *relayConn) Close() error {
	c.once.Do(func() {
		c.lease.release()
		c.g.remove(c)
		c.mu.Lock()
		c.closed = true
		if c.l != nil && c.client != nil {
			cl := addrPort(c.client)
			c.l.mu.Lock()
			for _, ch := range c.peers {
				k := chanKey{cl, ch}
				if b := c.l.bound[k]; b != nil && b.relay == c {
					delete(c.l.bound, k)
				}
			}
			c.l.mu.Unlock()
		}
		clear(c.peers)
		c.mu.Unlock()
	})
	return c.UDPConn.Close()
}
