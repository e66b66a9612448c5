package client

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/sipua"
)

// callHandler takes the call requests the home node sends over the
// device's connection.
type callHandler interface {
	HandleInvite(req *sip.Request, tx sip.ServerTransaction)
	HandleAck(req *sip.Request, tx sip.ServerTransaction)
	HandleBye(req *sip.Request, tx sip.ServerTransaction)
}

// serveCalls routes INVITE, ACK and BYE of the link to its call handler.
// Without one the device is not taking calls: 480 (RFC 3261 §21.4.18),
// which the node weighs against its other devices' answers.
func (l *sipLink) serveCalls(srv *sipgo.Server) {
	handler := func() callHandler {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.calls
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if h := handler(); h != nil {
			h.HandleInvite(req, tx)
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 480, "Temporarily Unavailable: not taking calls", nil))
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		if h := handler(); h != nil {
			h.HandleAck(req, tx)
		}
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if h := handler(); h != nil {
			h.HandleBye(req, tx)
			return
		}
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
	})
}

// CallLine is the device's SIP over TLS connection to its home node,
// used for calls through the node: a user agent that places calls there
// and, when answering, takes the calls the node forks to this device.
type CallLine struct {
	p       *Profile
	link    *sipLink
	ua      *sipua.UA
	release func() // the listen lock, when answering

	stop context.CancelFunc
	done chan struct{}
	once sync.Once
}

// OpenCallLine connects to the home node for calls. With answering the
// device registers, so that calls to its account ring it, and holds the
// profile's listen lock meanwhile (a 'phonex listen' of the same profile
// would take its registration); without it, it only places calls.
func (p *Profile) OpenCallLine(ctx context.Context, answering bool) (*CallLine, error) {
	var release func()
	if answering {
		var err error
		if release, err = p.lockListen(); err != nil {
			return nil, err
		}
	}
	fail := func(err error) (*CallLine, error) {
		if release != nil {
			release()
		}
		return nil, err
	}
	var me api.Me
	if err := p.c.call(ctx, "GET", api.PathMe, nil, &me); err != nil {
		return fail(err)
	}
	rtpHost, err := localAddrFor(me.SIP)
	if err != nil {
		return fail(err)
	}
	m := &messenger{p: p, sipAddr: me.SIP}
	link, err := m.dial()
	if err != nil {
		return fail(err)
	}
	ua, err := sipua.NewRoutedUA(sipua.RoutedConfig{Client: link.cli, Proxy: me.SIP, AOR: p.Device.Account.String(), RTPHost: rtpHost, Logger: p.log})
	if err != nil {
		link.close()
		return fail(err)
	}
	link.mu.Lock()
	link.calls = ua
	link.mu.Unlock()
	l := &CallLine{p: p, link: link, ua: ua, release: release, done: make(chan struct{})}
	if !answering {
		close(l.done)
		return l, nil
	}
	if err := link.register(ctx, 60); err != nil {
		link.close()
		return fail(fmt.Errorf("register for calls: %w", err))
	}
	rctx, stop := context.WithCancel(context.Background())
	l.stop = stop
	go func() {
		// Refreshed often: it doubles as the keep-alive of the
		// connection calls arrive on.
		defer close(l.done)
		t := time.NewTicker(15 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				uctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				link.register(uctx, 0)
				cancel()
				return
			case <-t.C:
				if err := link.register(rctx, 60); err != nil {
					p.log.Warn("call registration refresh failed", "err", err)
				}
			}
		}
	}()
	return l, nil
}

// UA is the line's user agent.
func (l *CallLine) UA() *sipua.UA { return l.ua }

// Close unregisters (when answering) and closes the connection.
func (l *CallLine) Close() {
	l.once.Do(func() {
		if l.stop != nil {
			l.stop()
		}
		<-l.done
		l.link.close()
		if l.release != nil {
			l.release()
		}
	})
}

// localAddrFor is the local IP address the system routes to addr from,
// which is the media address offered in SDP (the host candidate; ICE adds
// others).
func localAddrFor(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", fmt.Errorf("local address towards the cluster %s: %w", addr, err)
	}
	defer c.Close()
	ap, err := netip.ParseAddrPort(c.LocalAddr().String())
	if err != nil {
		return "", err
	}
	return ap.Addr().Unmap().String(), nil
}

// ringer reports calls to a device that listens for messages without
// answering calls: each rings (180) until the caller gives up or another
// device answers, and shows as a call event.
type ringer struct {
	ctx  context.Context
	emit func(Event)
	now  func() time.Time
}

func (r *ringer) HandleInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if tag, _ := to.Params.Get("tag"); tag != "" {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
	}
	var account, device string
	caller, elsewhere := sipua.Ring(r.ctx, req, tx, func(caller string) {
		account, device = splitDevice(caller)
		r.emit(Event{Type: "call", Time: r.now(), Peer: account, FromDevice: device, State: "ringing"})
	})
	if account == "" {
		account, device = splitDevice(caller)
	}
	state := "missed"
	if elsewhere {
		state = "answered_elsewhere"
	}
	r.emit(Event{Type: "call", Time: r.now(), Peer: account, FromDevice: device, State: state})
}

func (r *ringer) HandleAck(*sip.Request, sip.ServerTransaction) {}

func (r *ringer) HandleBye(req *sip.Request, tx sip.ServerTransaction) {
	tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
}

func splitDevice(who string) (account, device string) {
	for i := len(who) - 1; i >= 0; i-- {
		if who[i] == '/' {
			return who[:i], who[i+1:]
		}
	}
	return who, ""
}

// Logger is the profile's logger, for the calls it makes.
func (p *Profile) Logger() *slog.Logger { return p.log }
