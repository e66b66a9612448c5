package proxy

import (
	"context"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/store"
)

// Calls between clusters. The caller's node checks its side of the gate
// (the caller lists the callee), forwards the INVITE to the callee's node
// over the node link with the calling device's certificate, and relays the
// answers; the callee's node checks the node and device certificates
// against the pin, its side of the gate (the callee lists the caller), and
// forks to the callee's devices as for a local call. Both nodes
// record-route, so the dialog's requests pass both: the callee's node
// sends them to the caller's over the connection that node dialled, and
// the caller's node sends them on over it too.

// remote reports whether a leg is a device of another cluster.
func (l leg) remote() bool { return l.id.AccountID < 0 }

// clientOf is the client that reaches a leg: the peer's for a leg behind a
// node this one dialled.
func (r *router) clientOf(l leg) *sipgo.Client {
	if l.via != nil {
		return l.via
	}
	return r.p.cli
}

// legOpen reports whether a leg's connection is still up; a peer's
// connection is dialled again on demand.
func (r *router) legOpen(l leg) bool {
	if l.via != nil {
		return true
	}
	return r.p.conn(l.source) != nil
}

// registerPeer handles what a peer sends over a connection this node
// dialled: the in-dialog requests of forwarded calls.
func (r *router) registerPeer(srv *sipgo.Server) {
	srv.OnAck(r.onAck)
	srv.OnBye(r.inDialog)
	srv.OnUpdate(r.inDialog)
	srv.OnInfo(r.inDialog)
	srv.OnPrack(r.inDialog)
	srv.OnRefer(r.inDialog)
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		if !r.p.notifyFromPeer(req, tx) { // federation_presence.go
			r.inDialog(req, tx)
		}
	})
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if toTag(req) == "" {
			r.p.respond(tx, req, 403, "Forbidden: calls from a peer come over its own connection")
			return
		}
		r.inDialog(req, tx)
	})
	srv.OnCancel(r.onCancel)
	srv.OnNoRoute(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method != sip.ACK {
			r.p.respond(tx, req, 405, "Method Not Allowed")
		}
	})
}

// remoteIdentity is a device of another cluster as a leg names it: no
// local ids (negative, so no local row matches).
func remoteIdentity(d ident.Device) Identity {
	return Identity{AccountID: -1, DeviceID: federation.RemoteDeviceID(d), Account: d.Account.String(), Device: d.Name}
}

// inviteFromPeer handles an initial INVITE forwarded by a peer's node;
// false when req did not come from a node.
func (r *router) inviteFromPeer(req *sip.Request, tx sip.ServerTransaction) bool {
	p := r.p
	if !p.fromNode(req) {
		return false
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	domain, answered := p.peerNode(ctx, req, tx)
	if answered {
		return true
	}
	if domain == "" {
		return false
	}
	from := req.From()
	if from == nil || req.CallID() == nil {
		p.respond(tx, req, 400, "Missing From or Call-ID")
		return true
	}
	var certV string
	if h := req.GetHeader(federation.HeaderDeviceCert); h != nil {
		certV = h.Value()
	}
	der, err := federation.ParseCert(certV)
	if err != nil {
		p.respond(tx, req, 400, "Bad Request: "+err.Error())
		return true
	}
	dev, _, err := p.cfg.Federation.Pins.VerifyDevice(ctx, domain, der)
	if err != nil {
		p.respond(tx, req, 403, "Forbidden: the calling device's certificate is not valid for "+domain)
		return true
	}
	if sender, err := ident.ParseAccount(from.Address.User + "@" + strings.ToLower(from.Address.Host)); err != nil || sender != dev.Account {
		p.respond(tx, req, 403, "Forbidden: From is not the calling device's account")
		return true
	}
	caller := remoteIdentity(dev)
	if wait := r.limits.take(caller.Account, time.Now()); wait > 0 {
		p.respond(tx, req, 503, "Service Unavailable: too many calls", retryAfter(wait)...)
		return true
	}
	// This cluster's side of the gate: the callee lists the caller. The
	// caller's node checked that the caller lists the callee.
	callee, err := r.remoteGate(ctx, caller, req.Recipient)
	if err == errNotAllowed {
		r.refused.Add(1)
		p.respond(tx, req, 403, reasonNotContact)
		return true
	}
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	device := ""
	if req.Recipient.UriParams != nil {
		device, _ = req.Recipient.UriParams.Get("device")
	}
	targets, err := r.targets(ctx, callee, &caller, device)
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	if len(targets) == 0 {
		p.respond(tx, req, 480, reasonOffline)
		return true
	}
	fwd := req.Clone()
	for fwd.RemoveHeader(federation.HeaderDeviceCert) {
	}
	callID := req.CallID().Value()
	r.mu.Lock()
	if r.forks[callID] != nil || r.dialogs[callID] != nil || len(r.dialogs) >= maxDialogs {
		r.mu.Unlock()
		p.respond(tx, req, 482, "Loop Detected")
		return true
	}
	f := &fork{r: r, req: fwd, tx: tx, caller: leg{id: caller, source: req.Source()}, callID: callID}
	r.forks[callID] = f
	r.mu.Unlock()
	f.run(targets)
	r.mu.Lock()
	delete(r.forks, callID)
	r.mu.Unlock()
	return true
}

// remoteGate is gate for a caller of another cluster: the callee exists,
// is active and lists the caller; anything else is errNotAllowed.
func (r *router) remoteGate(ctx context.Context, caller Identity, target sip.Uri) (store.Account, error) {
	p := r.p
	to, err := p.accountOf(target)
	if err != nil {
		return store.Account{}, errNotAllowed
	}
	callee, err := p.cfg.Store.Account(ctx, to.String())
	if err == store.ErrNotFound {
		return callee, errNotAllowed
	}
	if err != nil {
		return callee, err
	}
	if callee.Status != store.StatusActive {
		return callee, errNotAllowed
	}
	ok, err := p.cfg.Store.HasContact(ctx, callee.Name, caller.Account)
	if err != nil {
		return callee, err
	}
	if !ok {
		return callee, errNotAllowed
	}
	return callee, nil
}

// inviteToPeer forwards a local device's INVITE to the node of a peer
// domain; false when the callee's domain is not a peer.
func (r *router) inviteToPeer(req *sip.Request, tx sip.ServerTransaction, id *Identity) bool {
	p := r.p
	fed := p.cfg.Federation
	if fed == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	to, err := ident.ParseAccount(req.Recipient.User + "@" + strings.ToLower(req.Recipient.Host))
	if err != nil {
		return false
	}
	peer, err := p.cfg.Store.Peer(ctx, to.Domain)
	if err == store.ErrNotFound {
		return false
	}
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	cert := p.ln.peer(req.Source())
	if cert == nil {
		p.respond(tx, req, 403, "Forbidden: only PhoneX devices call other clusters")
		return true
	}
	// This cluster's side of the gate: the caller lists the callee.
	ok, err := p.cfg.Store.HasContact(ctx, id.Account, to.String())
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	if !ok {
		r.refused.Add(1)
		p.respond(tx, req, 403, reasonNotContact)
		return true
	}
	cli, err := p.peerClient(peer)
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	callID := req.CallID().Value()
	r.mu.Lock()
	if r.forks[callID] != nil || r.dialogs[callID] != nil || len(r.dialogs) >= maxDialogs {
		r.mu.Unlock()
		p.respond(tx, req, 482, "Loop Detected")
		return true
	}
	r.forks[callID] = &fork{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.forks, callID)
		r.mu.Unlock()
	}()
	out := req.Clone()
	for out.RemoveHeader("Route") {
	}
	for out.RemoveHeader("P-Asserted-Identity") {
	}
	out.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+id.Account+";gr="+id.Device+">"))
	out.AppendHeader(sip.NewHeader(federation.HeaderDeviceCert, federation.EncodeCert(cert.Raw)))
	decMaxForwards(out)
	rr := "<sip:" + p.cfg.Domain + ";transport=tls;lr;fed=" + sip.GenerateTagN(8) + ">"
	out.PrependHeader(sip.NewHeader("Record-Route", rr))
	out.SetTransport("TLS")
	out.SetDestination(peer.SIP)
	caller := leg{id: *id, source: req.Source()}
	ring, cancelRing := context.WithTimeout(p.ctx, p.ringTimeout()+15*time.Second)
	defer cancelRing()
	ctx2, cancel2 := context.WithCancel(ring)
	defer cancel2()
	ctx = ctx2
	ctTx, err := cli.TransactionRequest(ctx, out, sipgo.ClientRequestAddVia)
	if err != nil {
		p.respond(tx, req, 480, "Temporarily Unavailable: the callee's cluster cannot be reached")
		return true
	}
	defer ctTx.Terminate()
	relay := func(res *sip.Response) {
		fwd := res.Clone()
		fwd.RemoveHeader("Via")
		rrs := fwd.GetHeaders("Record-Route")
		vals := make([]string, len(rrs))
		for i, h := range rrs {
			vals[i] = h.Value()
			if vals[i] == rr {
				vals[i] = r.recordRoute(caller.source)
			}
		}
		for fwd.RemoveHeader("Record-Route") {
		}
		for _, v := range vals {
			fwd.AppendHeader(sip.NewHeader("Record-Route", v))
		}
		if err := tx.Respond(fwd); err != nil {
			p.log.Debug("relay call response", "err", err)
		}
	}
	ringing := false
	cancelled := false
	callerGone := tx.Done()
	for {
		select {
		case res := <-ctTx.Responses():
			switch {
			case res.IsProvisional():
				ringing = true
				if cancelled {
					r.cancelPeer(cli, out, peer.SIP)
					continue
				}
				if res.StatusCode != 100 {
					relay(res)
				}
			case res.IsSuccess():
				src := res.Source()
				if src == "" {
					src = peer.SIP
				}
				calleeID := Identity{AccountID: -1, DeviceID: -1, Account: to.String()}
				if d, err := ident.ParseDevice(assertedDevice(res)); err == nil && d.Account == to {
					calleeID = remoteIdentity(d)
				}
				d := &dialog{caller: caller, callee: leg{id: calleeID, source: src, via: cli}}
				r.mu.Lock()
				r.dialogs[callID] = d
				r.mu.Unlock()
				if o := p.cfg.Calls; o != nil {
					o.CallStarted(caller.id.Account, caller.id.Device)
				}
				relay(res)
				return true
			default:
				if !cancelled {
					p.respond(tx, req, res.StatusCode, res.Reason)
				}
				return true
			}
		case <-ctTx.Done():
			if !cancelled {
				p.respond(tx, req, 480, "Temporarily Unavailable: the callee's cluster did not answer")
			}
			return true
		case <-callerGone:
			// The caller's CANCEL (sipgo answered it and the INVITE 487):
			// the peer's branch is cancelled once it has answered at all
			// (RFC 3261 §9.1).
			callerGone = nil
			cancelled = true
			if ringing {
				r.cancelPeer(cli, out, peer.SIP)
			}
		case <-ctx.Done():
			if !cancelled {
				p.respond(tx, req, 408, reasonNoAnswer)
			}
			return true
		}
	}
}

// assertedDevice is the user@domain/device a response's P-Asserted-Identity
// names with its gr parameter, or "".
func assertedDevice(res *sip.Response) string {
	h := res.GetHeader("P-Asserted-Identity")
	if h == nil {
		return ""
	}
	v := strings.Trim(strings.TrimSpace(h.Value()), "<>")
	v = strings.TrimPrefix(v, "sip:")
	acct, params, _ := strings.Cut(v, ";")
	for _, kv := range strings.Split(params, ";") {
		if g, ok := strings.CutPrefix(kv, "gr="); ok {
			return acct + "/" + g
		}
	}
	return ""
}

// cancelPeer cancels an INVITE forwarded to a peer (RFC 3261 §9.1: the
// branch's Via, Call-ID, From, To and CSeq number).
func (r *router) cancelPeer(cli *sipgo.Client, inv *sip.Request, dest string) {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	if via := inv.Via(); via != nil {
		c.AppendHeader(via.Clone())
	}
	for _, name := range []string{"From", "To", "Call-ID"} {
		if h := inv.GetHeader(name); h != nil {
			c.AppendHeader(sip.HeaderClone(h))
		}
	}
	if cs := inv.CSeq(); cs != nil {
		c.AppendHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo, MethodName: sip.CANCEL})
	}
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.SetBody(nil)
	c.SetTransport("TLS")
	c.SetDestination(dest)
	go func() {
		ctx, cancel := context.WithTimeout(r.p.ctx, 10*time.Second)
		defer cancel()
		if _, err := cli.Do(ctx, c, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
			r.p.log.Debug("cancel a call forwarded to a peer", "err", err)
		}
	}()
}

func (p *Proxy) ringTimeout() time.Duration {
	if p.cfg.RingTimeout > 0 {
		return p.cfg.RingTimeout
	}
	return DefaultRingTimeout
}
