package sipua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/phonex/phonex/internal/ice"
)

// ICEOptions configure how a call finds its media path (RFC 8445).
type ICEOptions struct {
	// Disabled leaves ICE out: the description carries only the c=/m=
	// address and media goes to the peer's.
	Disabled bool
	// Servers are the STUN/TURN servers to gather from; none gives host
	// candidates only.
	Servers ice.Servers
	// RelayOnly offers only relayed candidates: media always crosses the
	// TURN relay and the peer never learns this side's address.
	RelayOnly bool
	// Timeout bounds the connectivity checks; 0 means 15 s.
	Timeout time.Duration
}

// ErrRelayUnavailable: the call had to go through the TURN relay (ICE
// RelayOnly) and the relay gave no address, or the peer cannot use one.
var ErrRelayUnavailable = errors.New("relay unavailable")

// mediaTransport is what the media runs over: a plain UDP socket sending to
// the address of the peer's description, or the pair ICE selected.
type mediaTransport interface {
	ReadFrom(b []byte) (int, netip.AddrPort, error)
	// WriteTo sends to to; a transport with its own destination ignores it.
	WriteTo(b []byte, to netip.AddrPort) error
	Close() error
}

type udpTransport struct{ c *net.UDPConn }

func (u udpTransport) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	return u.c.ReadFromUDPAddrPort(b)
}

func (u udpTransport) WriteTo(b []byte, to netip.AddrPort) error {
	_, err := u.c.WriteToUDPAddrPort(b, to)
	return err
}

func (u udpTransport) Close() error { return u.c.Close() }

// iceTransport is an ICE session: before Connect only its agent (closing it
// frees the candidates' sockets and relay allocations), then the selected
// pair, which follows pair changes without the media noticing.
type iceTransport struct {
	agent *ice.Agent
	conn  *ice.Conn
}

func (t *iceTransport) ReadFrom(b []byte) (int, netip.AddrPort, error) {
	if t.conn == nil {
		return 0, netip.AddrPort{}, net.ErrClosed
	}
	n, err := t.conn.Read(b)
	if err != nil {
		// The agent closes its buffer with io.EOF or its own error when
		// the call ends: the read loop treats both as closed.
		return 0, netip.AddrPort{}, fmt.Errorf("%w: %v", net.ErrClosed, err)
	}
	return n, t.conn.Remote(), nil
}

func (t *iceTransport) WriteTo(b []byte, _ netip.AddrPort) error {
	if t.conn == nil {
		return net.ErrClosed
	}
	_, err := t.conn.Write(b)
	return err
}

func (t *iceTransport) Close() error { return t.agent.Close() }

// prepareICE gathers our candidates and puts them in c.local, the default
// candidate in its c= and m= lines (RFC 8839 §4.2.1.2), in place of the
// plain socket. The offerer calls it before its offer, the answerer when
// the offer has ICE.
func (c *Call) prepareICE(ctx context.Context) error {
	o := c.opts.ICE
	a, err := ice.New(ice.Config{Servers: o.Servers, RelayOnly: o.RelayOnly, IP: c.local.Addr, Logger: c.log})
	if err == nil {
		var p ice.Params
		var def netip.AddrPort
		if p, def, err = a.Gather(ctx); err == nil {
			c.conn.Close()
			c.conn = &iceTransport{agent: a}
			c.local.ICE = &p
			c.local.Addr, c.local.Port = def.Addr(), int(def.Port())
			c.iceDefault = def
			return nil
		}
		a.Close()
	}
	if errors.Is(err, ice.ErrNoRelay) {
		return fmt.Errorf("%w: %w", ErrRelayUnavailable, err)
	}
	return fmt.Errorf("call: ICE: %w", err)
}

// offerICE prepares ICE for an offer unless it is disabled. Without
// candidates the offer goes out plain, unless only the relay may be used.
func (c *Call) offerICE(ctx context.Context) error {
	if c.opts.ICE.Disabled {
		return nil
	}
	return c.orPlain(c.prepareICE(ctx))
}

// orPlain turns an ICE preparation failure into a plain description (the
// plain socket is still in place), except when only the relay may be
// used: then the call must not go elsewhere.
func (c *Call) orPlain(err error) error {
	if err == nil || c.opts.ICE.RelayOnly {
		return err
	}
	c.log.Warn("ICE unavailable for this call; offering the plain address", "err", err)
	return nil
}

// answerICE prepares ICE for the answer when the offer has it; an offer
// without ICE (a phone with ICE off) is answered with the plain socket, or
// refused when only the relay may be used, which such a peer cannot reach.
func (c *Call) answerICE(ctx context.Context, offer *Media) error {
	switch {
	case offer.ICEMismatch:
		c.local.ICEMismatch = !c.opts.ICE.Disabled
		fallthrough
	case offer.ICE == nil || c.opts.ICE.Disabled:
		if c.opts.ICE.RelayOnly {
			return fmt.Errorf("%w: the caller does not support ICE, so the call cannot go through the relay", ErrRelayUnavailable)
		}
		return nil
	}
	if err := c.prepareICE(ctx); err != nil {
		return c.orPlain(err)
	}
	// Known before our answer leaves, so the offerer's first checks meet
	// its candidates.
	if err := c.conn.(*iceTransport).agent.SetRemote(*offer.ICE); err != nil {
		// None of the offer's candidates is usable here (another
		// address family): answer plain from our default address.
		if c.opts.ICE.RelayOnly {
			return fmt.Errorf("%w: %w", ErrRelayUnavailable, err)
		}
		c.log.Warn("the offer's ICE candidates are unusable; answering with the plain address", "err", err)
		conn, err := c.dropICE()
		if err != nil {
			return err
		}
		c.conn, c.local.ICE = udpTransport{conn}, nil
	}
	return nil
}

// dropICE closes the ICE agent and reopens our default candidate, a host
// address, as a plain socket: the peer sends there when it does not use
// ICE.
func (c *Call) dropICE() (*net.UDPConn, error) {
	c.conn.(*iceTransport).agent.Close()
	conn, err := rebindUDP(c.iceDefault)
	if err != nil {
		return nil, fmt.Errorf("call: the peer has no ICE; reopen %v: %w", c.iceDefault, err)
	}
	return conn, nil
}

// selectTransport makes the media transport ready before the media
// starts: the ICE connectivity checks and nomination, the offerer
// controlling (RFC 8445 §6.1.1), when both sides have ICE; the plain
// address of the peer's description otherwise (RFC 8839 §4.2.3: a peer
// without ICE). It reports the path.
func (c *Call) selectTransport(ctx context.Context, remote *Media) error {
	it, ok := c.conn.(*iceTransport)
	if !ok {
		c.setPath(ice.PathHost, false)
		return nil
	}
	if remote.ICE == nil {
		if c.opts.ICE.RelayOnly {
			return fmt.Errorf("%w: the peer does not support ICE, so the call cannot go through the relay", ErrRelayUnavailable)
		}
		// The peer sends to our default candidate, a host address: free
		// it from the agent and take it as a plain socket.
		conn, err := c.dropICE()
		if err != nil {
			return err
		}
		c.runMu.Lock()
		ending := c.ending
		if !ending {
			c.conn = udpTransport{conn}
		}
		c.runMu.Unlock()
		if ending {
			conn.Close()
			return errors.New("call: ended before the media started")
		}
		c.setPath(ice.PathHost, false)
		return nil
	}
	to := c.opts.ICE.Timeout
	if to == 0 {
		to = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, to)
	defer cancel()
	it.agent.OnPathChange(func(p ice.Path) { c.setPath(p, true) })
	it.agent.OnLost(func(lost bool) {
		if lost {
			c.alert("the media path stopped answering ICE connectivity checks: the peer or the network is gone, audio is interrupted")
		} else {
			c.alert("the media path answers again: audio resumes")
		}
	})
	conn, err := it.agent.Connect(ctx, *remote.ICE, c.outgoing)
	if err != nil {
		if c.opts.ICE.RelayOnly {
			return fmt.Errorf("%w: %w", ErrRelayUnavailable, err)
		}
		return fmt.Errorf("call: %w", err)
	}
	it.conn = conn
	c.setPath(conn.Path(), true)
	return nil
}

// setPath records the media path and reports it when it is new or changed;
// ZRTP and SRTP go on over the new pair unchanged.
func (c *Call) setPath(p ice.Path, withICE bool) {
	if p == "" {
		return
	}
	c.statsMu.Lock()
	old := c.stats.Path
	c.stats.Path, c.stats.ICE = string(p), withICE
	c.statsMu.Unlock()
	if old == string(p) {
		return
	}
	reason := ""
	switch {
	case !withICE:
		reason = "no ICE: media goes to the address in the peer's description"
	case old != "":
		reason = "path changed from " + old
	}
	c.emit(Event{Type: EventPath, Path: string(p), Reason: reason})
}

// rebindUDP opens a UDP socket on ap, which an ICE agent has just closed.
func rebindUDP(ap netip.AddrPort) (*net.UDPConn, error) {
	var err error
	for range 50 {
		var conn *net.UDPConn
		if conn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap)); err == nil {
			return conn, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil, err
}
