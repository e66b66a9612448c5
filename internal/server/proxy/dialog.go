package proxy

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"
)

// dialog is an established call routed by the node: the two devices and
// the connections their requests arrive on. In-dialog requests are taken
// only from these two connections and go only to the other one.
type dialog struct {
	caller, callee leg
}

// established records the dialog of a fork's winning branch and tells the
// observer.
func (r *router) established(f *fork, b *branch, res *sip.Response) {
	d := &dialog{caller: f.caller, callee: leg{id: b.t.id, source: b.t.source}}
	r.mu.Lock()
	r.dialogs[f.callID] = d
	r.mu.Unlock()
	r.observe(d, true) // hop.go
}

// end forgets a dialog and tells the observer, once.
func (r *router) end(callID string) {
	r.mu.Lock()
	d := r.dialogs[callID]
	delete(r.dialogs, callID)
	r.mu.Unlock()
	if d == nil {
		return
	}
	r.observe(d, false)
}

// peerOf finds the dialog of req and the leg it must go to. The request
// must come from one of the dialog's connections, or from a new
// connection of one of its devices (a device that reconnected mid-call,
// proved by its certificate).
func (r *router) peerOf(req *sip.Request) (*dialog, leg, bool) {
	id := req.CallID()
	if id == nil {
		return nil, leg{}, false
	}
	src := req.Source()
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dialogs[id.Value()]
	if d == nil {
		return nil, leg{}, false
	}
	switch src {
	case d.caller.source:
		return d, d.callee, true
	case d.callee.source:
		return d, d.caller, true
	}
	return d, leg{}, false
}

// moved accepts a dialog's device on a new connection: the certificate
// of that connection must name the same device.
func (r *router) moved(req *sip.Request, d *dialog) (leg, bool) {
	cert := r.p.ln.peer(req.Source())
	if cert == nil {
		return leg{}, false
	}
	ctx, cancel := context.WithTimeout(r.p.ctx, 10*time.Second)
	defer cancel()
	id, err := r.p.cfg.Auth.Certificate(ctx, cert)
	if err != nil {
		return leg{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch id.DeviceID {
	case d.caller.id.DeviceID:
		d.caller.source = req.Source()
		return d.callee, true
	case d.callee.id.DeviceID:
		d.callee.source = req.Source()
		return d.caller, true
	}
	return leg{}, false
}

// forwardable prepares an in-dialog request for the other leg: the Route
// naming the node is spent (RFC 3261 §16.4), Max-Forwards decremented,
// and the request goes over the other device's connection.
func forwardable(req *sip.Request, to leg) *sip.Request {
	out := req.Clone()
	out.RemoveHeader("Route")
	decMaxForwards(out)
	out.SetTransport("TLS")
	out.SetDestination(to.source)
	return out
}

// onAck forwards the ACK of a 2xx end to end (RFC 3261 §13.2.2.4: it is
// its own transaction, routed like any in-dialog request). An ACK that
// matches no dialog is dropped: ACK is never answered.
func (r *router) onAck(req *sip.Request, tx sip.ServerTransaction) {
	d, to, ok := r.peerOf(req)
	if d == nil {
		return
	}
	if !ok {
		if to, ok = r.moved(req, d); !ok {
			return
		}
	}
	if err := r.writeLeg(to, forwardable(req, to)); err != nil {
		r.p.log.Debug("forward ACK", "err", err)
	}
}

// inDialog forwards BYE, re-INVITE, UPDATE, INFO and the other in-dialog
// requests to the other device and relays its responses.
func (r *router) inDialog(req *sip.Request, tx sip.ServerTransaction) {
	p := r.p
	if toTag(req) == "" {
		p.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	d, to, ok := r.peerOf(req)
	if d == nil {
		p.respond(tx, req, 481, "Call/Transaction Does Not Exist")
		return
	}
	if !ok {
		if to, ok = r.moved(req, d); !ok {
			p.respond(tx, req, 403, "Forbidden: not a party to this call")
			return
		}
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() <= 1 {
		p.respond(tx, req, 483, "Too Many Hops")
		return
	}
	callID := req.CallID().Value()
	if req.Method == sip.BYE {
		// Either side may end the call; it is over for the node whether
		// or not the other device still answers.
		defer r.end(callID)
	}
	ctx, cancel := context.WithTimeout(p.ctx, 32*time.Second)
	defer cancel()
	ctxTx, err := r.transactionLeg(ctx, to, forwardable(req, to))
	if err != nil {
		p.respond(tx, req, 480, "Temporarily Unavailable: the other device is not connected")
		return
	}
	defer ctxTx.Terminate()
	for {
		select {
		case res := <-ctxTx.Responses():
			if res.StatusCode == 100 {
				continue
			}
			fwd := res.Clone()
			fwd.RemoveHeader("Via")
			if req.Method == sip.BYE && !res.IsProvisional() {
				// Over before the caller learns it is.
				r.end(callID)
			}
			if err := tx.Respond(fwd); err != nil {
				p.log.Debug("relay in-dialog response", "err", err)
			}
			if !res.IsProvisional() {
				return
			}
		case <-ctxTx.Done():
			p.respond(tx, req, 408, "Request Timeout")
			return
		case <-ctx.Done():
			p.respond(tx, req, 408, "Request Timeout")
			return
		}
	}
}

// sweepDialogs ends the calls of which a device's connection closed: its
// BYE can no longer come, and the observer must not show a call forever.
func (r *router) sweepDialogs() {
	r.mu.Lock()
	var gone []string
	for id, d := range r.dialogs {
		if !r.legAlive(d.caller) || !r.legAlive(d.callee) {
			gone = append(gone, id)
		}
	}
	r.mu.Unlock()
	for _, id := range gone {
		r.end(id)
	}
}

// conn is the connection from addr on the device or the phone listener,
// or nil once it is closed.
func (p *Proxy) conn(addr string) *peerConn {
	for _, l := range []*peerListener{p.ln, p.phones} {
		if l == nil {
			continue
		}
		l.mu.Lock()
		c := l.conns[addr]
		l.mu.Unlock()
		if c != nil {
			return c
		}
	}
	return nil
}

// decMaxForwards lowers Max-Forwards by one (RFC 3261 §16.6 step 3),
// adding it when missing. The header is replaced, not changed in place:
// a clone of a request shares its headers.
func decMaxForwards(req *sip.Request) {
	n := 70
	if mf := req.MaxForwards(); mf != nil {
		n = int(mf.Val())
	}
	req.RemoveHeader("Max-Forwards")
	mf := sip.MaxForwardsHeader(max(n-1, 0))
	req.AppendHeader(&mf)
}
