package proxy

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/pidf"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/store"
)

// Presence between clusters. A device watching an account of a peer domain
// subscribes at its own node as for any contact; the node checks its side
// of the gate (the watcher lists the target), answers the device from its
// own dialog, and holds a subscription of its own at the target's node,
// on the device's behalf (its certificate travels with the SUBSCRIBE). The
// target's node checks the pin and its side (the target lists the
// watcher) and treats the watcher as any other; its NOTIFYs come back over
// the connection the watcher's node dialled, which relays each document to
// the device unchanged. Refreshes and unsubscribes of the device are
// passed on; a device subscription that is not refreshed ends at both
// nodes when it expires.

// peerSub is a device's subscription to an account of a peer domain.
type peerSub struct {
	dl      *subDialog // towards the device; dl.sub stays nil
	peer    store.Peer
	cli     *sipgo.Client
	callID  string // of the node's dialog with the peer
	ourTag  string // our From tag in it
	mu      sync.Mutex
	theirs  string // the peer's To tag, once it answered
	cseq    uint32
	expires time.Time
	cert    []byte
	from    sip.Uri // watcher
	target  sip.Uri
}

type peerSubs struct {
	mu     sync.Mutex
	byDev  map[string]*peerSub // by the device dialog's Call-ID and our tag
	byPeer map[string]*peerSub // by the peer dialog's Call-ID and our tag
}

func (p *Proxy) peerSubs() *peerSubs {
	s := &p.fed.subs
	s.mu.Lock()
	if s.byDev == nil {
		s.byDev, s.byPeer = map[string]*peerSub{}, map[string]*peerSub{}
	}
	s.mu.Unlock()
	return s
}

// sweep forgets subscriptions past their expiry.
func (s *peerSubs) sweep(ctx context.Context) {
	t := time.NewTicker(presenceEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			for k, ps := range s.byDev {
				ps.mu.Lock()
				gone := now.After(ps.expires)
				ps.mu.Unlock()
				if gone {
					delete(s.byDev, k)
					delete(s.byPeer, dialogKey(ps.callID, ps.ourTag))
				}
			}
			s.mu.Unlock()
		}
	}
}

func (s *peerSubs) drop(ps *peerSub) {
	s.mu.Lock()
	delete(s.byDev, dialogKey(ps.dl.callID, ps.dl.ourTag))
	delete(s.byPeer, dialogKey(ps.callID, ps.ourTag))
	s.mu.Unlock()
}

// subscribeToPeer takes a device's new SUBSCRIBE for an account of a peer
// domain; false when the target is not of one.
func (p *Proxy) subscribeToPeer(req *sip.Request, tx sip.ServerTransaction, id *Identity, exp time.Duration) bool {
	fed := p.cfg.Federation
	if fed == nil || id.AccountID < 0 {
		return false
	}
	target, err := ident.ParseAccount(req.Recipient.User + "@" + strings.ToLower(req.Recipient.Host))
	if err != nil || target.Domain == p.cfg.Domain {
		return false
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	peer, err := p.cfg.Store.Peer(ctx, target.Domain)
	if err == store.ErrNotFound {
		return false
	}
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	cert := p.ln.peer(req.Source())
	contact := req.Contact()
	from := req.From()
	if cert == nil || contact == nil || from == nil {
		p.respond(tx, req, 403, "Forbidden")
		return true
	}
	// This cluster's side of the gate; the same 403 as for a stranger.
	ok, err := p.cfg.Store.HasContact(ctx, id.Account, target.String())
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	if !ok {
		p.respond(tx, req, 403, "Forbidden")
		return true
	}
	cli, err := p.peerClient(peer)
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	tUri := sip.Uri{Scheme: "sip", User: target.User, Host: target.Domain}
	ps := &peerSub{peer: peer, cli: cli, callID: sip.GenerateTagN(24), ourTag: sip.GenerateTagN(16), cert: cert.Raw,
		from: sip.Uri{Scheme: "sip", User: user(id.Account), Host: p.cfg.Domain}, target: tUri, expires: time.Now().Add(exp)}
	ps.dl = &subDialog{deviceID: id.DeviceID, callID: req.CallID().Value(), ourTag: sip.GenerateTagN(16), their: from.Value(),
		target: tUri, contact: *contact.Address.Clone(), source: req.Source()}
	if exp == 0 {
		// A fetch (RFC 6665 §4.4.3): kept for its one NOTIFY, which ends
		// it, or until the sweep.
		ps.expires = time.Now().Add(30 * time.Second)
	}
	subs := p.peerSubs()
	// Known before the peer's first NOTIFY, which may beat its 200.
	subs.mu.Lock()
	subs.byDev[dialogKey(ps.dl.callID, ps.dl.ourTag)] = ps
	subs.byPeer[dialogKey(ps.callID, ps.ourTag)] = ps
	subs.mu.Unlock()
	code, reason, expOut := p.peerSubscribe(ctx, ps, exp)
	if code/100 != 2 {
		subs.drop(ps)
		if code == 0 {
			code, reason = 480, "Temporarily Unavailable: the contact's cluster cannot be reached"
		}
		p.respond(tx, req, code, reason)
		return true
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if rt := res.To(); rt != nil {
		rt.Params.Add("tag", ps.dl.ourTag)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(expOut.Seconds()))))
	res.AppendHeader(&sip.ContactHeader{Address: ps.dl.target})
	if err := tx.Respond(res); err != nil {
		p.log.Debug("sip respond failed", "err", err)
	}
	return true
}

// peerSubscribe sends the node's SUBSCRIBE (new or inside its dialog) to
// the peer and returns the peer's answer and granted expiry.
func (p *Proxy) peerSubscribe(ctx context.Context, ps *peerSub, exp time.Duration) (int, string, time.Duration) {
	ps.mu.Lock()
	ps.cseq++
	seq, theirs := ps.cseq, ps.theirs
	ps.mu.Unlock()
	req := sip.NewRequest(sip.SUBSCRIBE, ps.target)
	from := &sip.FromHeader{Address: ps.from, Params: sip.NewParams()}
	from.Params.Add("tag", ps.ourTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: ps.target, Params: sip.NewParams()}
	if theirs != "" {
		to.Params.Add("tag", theirs)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(ps.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.SUBSCRIBE})
	req.AppendHeader(&sip.ContactHeader{Address: ps.from})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Accept", pidf.ContentType))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(exp.Seconds()))))
	req.AppendHeader(sip.NewHeader(federation.HeaderDeviceCert, federation.EncodeCert(ps.cert)))
	req.SetBody(nil) // Content-Length: 0, which a stream needs
	req.SetTransport("TLS")
	req.SetDestination(ps.peer.SIP)
	res, err := ps.cli.Do(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		p.log.Debug("presence subscription at a peer", "err", err)
		return 0, "", 0
	}
	if res.StatusCode/100 != 2 {
		return res.StatusCode, res.Reason, 0
	}
	granted := exp
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			granted = min(exp, time.Duration(n)*time.Second)
		}
	}
	ps.mu.Lock()
	if tag := responseToTag(res); tag != "" {
		ps.theirs = tag
	}
	if granted > 0 {
		ps.expires = time.Now().Add(granted)
	}
	ps.mu.Unlock()
	return res.StatusCode, res.Reason, granted
}

func responseToTag(res *sip.Response) string {
	if to := res.To(); to != nil && to.Params != nil {
		tag, _ := to.Params.Get("tag")
		return tag
	}
	return ""
}

// refreshPeerSubscription handles a device's refresh or unsubscribe of a
// subscription held at a peer; false when key names no such subscription.
func (p *Proxy) refreshPeerSubscription(req *sip.Request, tx sip.ServerTransaction, id *Identity, key string, exp time.Duration) bool {
	if p.cfg.Federation == nil {
		return false
	}
	subs := p.peerSubs()
	subs.mu.Lock()
	ps := subs.byDev[key]
	subs.mu.Unlock()
	if ps == nil {
		return false
	}
	if ps.dl.deviceID != id.DeviceID {
		p.respond(tx, req, 481, "Subscription Does Not Exist")
		return true
	}
	if c := req.Contact(); c != nil {
		ps.dl.mu.Lock()
		ps.dl.contact, ps.dl.source = *c.Address.Clone(), req.Source()
		ps.dl.mu.Unlock()
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	// Still this cluster's side of the gate? A contact removed here ends
	// the watching at the next refresh, as within one cluster.
	target := ps.target.User + "@" + ps.target.Host
	if exp > 0 {
		listed, err := p.cfg.Store.HasContact(ctx, id.Account, target)
		if err != nil {
			p.internal(tx, req, err)
			return true
		}
		if !listed {
			p.peerSubscribe(ctx, ps, 0) // ends it at the peer
			subs.drop(ps)
			p.respond(tx, req, 403, "Forbidden")
			return true
		}
	}
	code, reason, granted := p.peerSubscribe(ctx, ps, exp)
	switch {
	case code/100 != 2:
		subs.drop(ps)
	case exp == 0:
		// Unsubscribed: kept for the peer's final NOTIFY, which ends it
		// (RFC 6665 §4.4.1), or until the sweep.
		ps.mu.Lock()
		ps.expires = time.Now().Add(30 * time.Second)
		ps.mu.Unlock()
	}
	switch {
	case code == 0:
		p.respond(tx, req, 480, "Temporarily Unavailable: the contact's cluster cannot be reached")
	case code/100 != 2:
		p.respond(tx, req, code, reason)
	default:
		p.respond(tx, req, 200, "OK", sip.NewHeader("Expires", strconv.Itoa(int(granted.Seconds()))))
	}
	return true
}

// notifyFromPeer relays a peer's NOTIFY of a subscription this node holds
// for a device; false when it belongs to no such subscription.
func (p *Proxy) notifyFromPeer(req *sip.Request, tx sip.ServerTransaction) bool {
	if p.cfg.Federation == nil || !eventIs(req, "presence") {
		return false
	}
	cid := req.CallID()
	if cid == nil {
		return false
	}
	subs := p.peerSubs()
	subs.mu.Lock()
	ps := subs.byPeer[dialogKey(cid.Value(), toTag(req))]
	subs.mu.Unlock()
	if ps == nil {
		p.respond(tx, req, 481, "Subscription Does Not Exist")
		return true
	}
	if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), pidf.ContentType) {
		p.respond(tx, req, 415, "Unsupported Media Type")
		return true
	}
	body := req.Body()
	if _, err := pidf.Parse(body); err != nil {
		p.respond(tx, req, 400, "Bad presence document")
		return true
	}
	state := "active"
	if h := req.GetHeader("Subscription-State"); h != nil {
		state = strings.TrimSpace(h.Value())
	}
	p.respond(tx, req, 200, "OK")
	if strings.HasPrefix(strings.ToLower(state), "terminated") {
		subs.drop(ps)
	}
	go func() {
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		defer cancel()
		if err := p.notify(ctx, ps.dl, body, state); err != nil {
			p.log.Debug("relay a peer's presence", "err", err)
		}
	}()
	return true
}

// subscribeFromPeer handles a SUBSCRIBE a peer's node sends for one of its
// devices; false when req did not come from a node.
func (p *Proxy) subscribeFromPeer(req *sip.Request, tx sip.ServerTransaction) bool {
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
		p.respond(tx, req, 403, "Forbidden: the watching device's certificate is not valid for "+domain)
		return true
	}
	from := req.From()
	if from == nil {
		p.respond(tx, req, 400, "Missing From")
		return true
	}
	if a, err := ident.ParseAccount(from.Address.User + "@" + strings.ToLower(from.Address.Host)); err != nil || a != dev.Account {
		p.respond(tx, req, 403, "Forbidden: From is not the watching device's account")
		return true
	}
	id := remoteIdentity(dev)
	p.subscribe(req, tx, &id)
	return true
}
