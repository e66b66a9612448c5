package proxy

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/store"
)

// CallObserver learns when a call routed by the node is established (the
// callee's 2xx was relayed) and when it ends (BYE, or a leg's connection
// closed), once for each of the two devices in it. Presence uses it to
// show "on a call". Calls are made on the proxy's goroutines and must not
// block.
type CallObserver interface {
	CallStarted(account, device string)
	CallEnded(account, device string)
}

// Defaults of call routing.
const (
	// DefaultRingTimeout is how long the callee's devices ring before
	// the caller gets 408 and the branches are cancelled.
	DefaultRingTimeout = 45 * time.Second
	// Per calling account: an INVITE storm is refused with 503 before it
	// costs a contact lookup each.
	callRate  = 2
	callBurst = 10
	// maxDialogs bounds the node's dialog table (one entry per call).
	maxDialogs = 100000
)

// Reason phrases callers branch on (sipua maps them to words). A caller
// who is not a mutual contact and a callee who does not exist get the same
// answer, so INVITEs cannot probe which accounts exist.
const (
	reasonNotContact = "Forbidden: not a mutual contact"
	reasonOffline    = "Temporarily Unavailable: no device of the callee is online"
	reasonNoAnswer   = "Request Timeout: no answer"
)

// router is the stateful forking proxy for INVITE and the dialogs it
// establishes (RFC 3261 §16). Every dialog is record-routed through the
// node, so in-dialog requests reach the peer only over the TLS connections
// the two devices authenticated on.
type router struct {
	p      *Proxy
	limits *limiter

	mu      sync.Mutex
	forks   map[string]*fork   // initial INVITEs being answered, by Call-ID
	dialogs map[string]*dialog // established calls, by Call-ID

	refused atomic.Uint64 // INVITEs refused by contact gating: the only record kept of them
}

func newRouter(p *Proxy) *router {
	return &router{p: p, limits: newLimiter(callRate, callBurst), forks: map[string]*fork{}, dialogs: map[string]*dialog{}}
}

// register installs the handlers of the methods the router proxies.
func (r *router) register(srv *sipgo.Server) {
	srv.OnInvite(r.p.entry(r.onInvite))
	srv.OnAck(r.p.entry(r.onAck))
	srv.OnBye(r.p.entry(r.inDialog))
	srv.OnUpdate(r.p.entry(r.inDialog))
	srv.OnInfo(r.p.entry(r.inDialog))
	srv.OnPrack(r.p.entry(r.inDialog))
	srv.OnRefer(r.p.entry(r.inDialog))
	srv.OnNotify(r.p.entry(r.inDialog))
	srv.OnCancel(r.p.entry(r.onCancel))
}

// RefusedCalls is the number of INVITEs refused because caller and
// callee are not mutual contacts (metrics, tests).
func (p *Proxy) RefusedCalls() uint64 { return p.router.refused.Load() }

// ActiveCalls is the number of established calls (metrics, tests).
func (p *Proxy) ActiveCalls() int {
	p.router.mu.Lock()
	defer p.router.mu.Unlock()
	return len(p.router.dialogs)
}

func toTag(req *sip.Request) string {
	if to := req.To(); to != nil && to.Params != nil {
		tag, _ := to.Params.Get("tag")
		return tag
	}
	return ""
}

func (r *router) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if toTag(req) != "" {
		r.inDialog(req, tx)
		return
	}
	r.invite(req, tx)
}

// invite handles an initial INVITE: who calls (the device certificate of
// the connection, or digest), whether the callee lets them (mutual
// contacts, checked before any device is contacted), then a branch to
// every registered device of the callee.
func (r *router) invite(req *sip.Request, stx sip.ServerTransaction) {
	p := r.p
	if mf := req.MaxForwards(); mf != nil && mf.Val() <= 1 {
		p.respond(stx, req, 483, "Too Many Hops")
		return
	}
	if r.inviteFromPeer(req, stx) { // federation_call.go
		return
	}
	id, ok := p.authenticate(req, stx)
	if !ok {
		return
	}
	p.cfg.Metrics.CallStarted()
	tx := &outcomeTx{ServerTransaction: stx}
	defer p.countCall(tx)
	from := req.From()
	if from == nil || req.CallID() == nil {
		p.respond(tx, req, 400, "Missing From or Call-ID")
		return
	}
	// The caller is who the connection proved, never who From claims.
	if a, err := p.accountOf(from.Address); err != nil || a.String() != id.Account {
		p.respond(tx, req, 403, "Forbidden: From is not the authenticated identity")
		return
	}
	if wait := r.limits.take(id.Account, time.Now()); wait > 0 {
		p.respond(tx, req, 503, "Service Unavailable: too many calls", retryAfter(wait)...)
		return
	}
	if !strings.EqualFold(req.Recipient.Host, p.cfg.Domain) {
		if r.inviteToPeer(req, tx, id) { // federation_call.go
			return
		}
		// Not a peer domain: said as such, since it tells nothing about
		// this domain's accounts.
		p.respond(tx, req, 404, "Not Found: calls go only to addresses in "+p.cfg.Domain)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	callee, err := r.gate(ctx, id, req.Recipient)
	if errors.Is(err, errNotAllowed) {
		r.refused.Add(1)
		p.respond(tx, req, 403, reasonNotContact)
		return
	}
	if err != nil {
		p.internal(tx, req, err)
		return
	}
	device := ""
	if req.Recipient.UriParams != nil {
		device, _ = req.Recipient.UriParams.Get("device")
	}
	targets, err := r.targets(ctx, callee, id, device)
	if err != nil {
		p.internal(tx, req, err)
		return
	}
	elsewhere, err := r.remoteTargets(ctx, callee, id, req.Recipient) // hop.go
	if err != nil {
		p.internal(tx, req, err)
		return
	}
	targets = append(targets, elsewhere...)
	if len(targets) == 0 {
		p.respond(tx, req, 480, reasonOffline)
		return
	}
	r.forkTo(req, tx, *id, targets)
}

var errNotAllowed = errors.New("not a mutual contact")

// gate finds the callee's account and checks that caller and callee list
// each other. An unknown, pending or disabled callee is refused like a
// stranger: the caller learns nothing about which accounts exist. Calling
// one's own account rings one's other devices.
func (r *router) gate(ctx context.Context, caller *Identity, target sip.Uri) (store.Account, error) {
	p := r.p
	to, err := p.accountOf(target)
	if err != nil {
		return store.Account{}, errNotAllowed
	}
	callee, err := p.cfg.Store.Account(ctx, to.String())
	if errors.Is(err, store.ErrNotFound) {
		return callee, errNotAllowed
	}
	if err != nil {
		return callee, err
	}
	if callee.Status != store.StatusActive {
		return callee, errNotAllowed
	}
	if callee.ID == caller.AccountID {
		return callee, nil
	}
	for _, pair := range [][2]string{{callee.Name, caller.Account}, {caller.Account, callee.Name}} {
		ok, err := p.cfg.Store.HasContact(ctx, pair[0], pair[1])
		if err != nil {
			return callee, err
		}
		if !ok {
			return callee, errNotAllowed
		}
	}
	return callee, nil
}

// target is one registered device a call rings.
type target struct {
	id      Identity
	source  string
	contact sip.Uri
}

// targets are the callee's active devices with a live registration, but
// the calling device itself; only the named one when device is set.
func (r *router) targets(ctx context.Context, callee store.Account, caller *Identity, device string) ([]target, error) {
	p := r.p
	active, err := p.cfg.Store.ActiveDevices(ctx, callee.ID)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []target
	for _, d := range active {
		b := p.bindings[d.ID]
		if b == nil || now.After(b.expires) || d.ID == caller.DeviceID {
			continue
		}
		if device != "" && b.id.Device != device {
			continue
		}
		out = append(out, target{id: b.id, source: b.source, contact: b.contact})
	}
	return out, nil
}

// leg is one side of a call: the device and the TLS connection it
// authenticated on.
type leg struct {
	id     Identity
	source string
	via    *sipgo.Client // a peer cluster's node dialled by this one (federation_call.go); nil: p.cli
}

// fork is an initial INVITE forked in parallel to the callee's devices
// (RFC 3261 §16.6-16.7).
type fork struct {
	r      *router
	req    *sip.Request
	tx     sip.ServerTransaction
	caller leg
	callID string
}

// branch is one forked INVITE's client transaction.
type branch struct {
	t       target
	req     *sip.Request
	tx      sip.ClientTransaction
	rr      string // our Record-Route value towards this device
	ringing bool   // a provisional response arrived, so CANCEL may be sent
	cancel  bool   // CANCEL wanted, sent once ringing
	// elsewhere: cancelled because another device answered
	elsewhere bool
	done      bool // a final response arrived
}

type branchResponse struct {
	b   *branch
	res *sip.Response // nil: the transaction ended without a final response
}

func (f *fork) run(targets []target) {
	p := f.r.p
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	responses := make(chan branchResponse, 16)
	var branches []*branch
	for _, t := range targets {
		b, err := f.send(ctx, t)
		if err != nil {
			p.log.Debug("call branch failed", "err", err)
			continue
		}
		branches = append(branches, b)
		go func() {
			defer func() {
				select {
				case responses <- branchResponse{b: b}:
				case <-ctx.Done():
				}
			}()
			for {
				select {
				case res := <-b.tx.Responses():
					select {
					case responses <- branchResponse{b: b, res: res}:
					case <-ctx.Done():
						return
					}
					if !res.IsProvisional() {
						return
					}
				case <-b.tx.Done():
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if len(branches) == 0 {
		p.respond(f.tx, f.req, 480, reasonOffline)
		return
	}
	ring := p.cfg.RingTimeout
	if ring <= 0 {
		ring = DefaultRingTimeout
	}
	timer := time.NewTimer(ring)
	defer timer.Stop()
	var (
		answered bool
		best     *sip.Response
		open     = len(branches)
		final    bool // a final response went upstream
	)
	cancelAll := func(except *branch, elsewhere bool) {
		for _, b := range branches {
			if b != except && !b.done {
				b.cancel, b.elsewhere = true, elsewhere
				if b.ringing {
					f.sendCancel(b)
				}
			}
		}
	}
	callerGone := f.tx.Done()
	for open > 0 {
		select {
		case br := <-responses:
			b, res := br.b, br.res
			if res == nil {
				if !b.done {
					b.done = true
					open--
					if best == nil {
						best = sip.NewResponseFromRequest(f.req, 408, "Request Timeout", nil)
					}
				}
				continue
			}
			switch {
			case res.IsProvisional():
				if !b.ringing {
					// Any provisional response, 100 too, lets CANCEL
					// follow (RFC 3261 §9.1).
					b.ringing = true
					if b.cancel {
						f.sendCancel(b)
						continue
					}
				}
				if res.StatusCode == 100 {
					continue
				}
				if !final && !answered {
					f.relay(b, res)
				}
			case res.IsSuccess():
				if b.done {
					continue
				}
				b.done = true
				open--
				if answered || final {
					// Another device answered first: this one is hung up
					// at once (its caller never sees its 2xx).
					go f.release(b, res)
					continue
				}
				answered = true
				f.r.established(f, b, res)
				f.relay(b, res)
				cancelAll(b, true)
			default:
				if b.done {
					continue
				}
				b.done = true
				open--
				if res.StatusCode >= 600 && !answered && !final {
					// A 6xx is the callee's answer for all its devices
					// (RFC 3261 §16.7 step 5): the others stop ringing.
					best = res
					cancelAll(b, false)
					f.respondUpstream(res)
					final = true
					continue
				}
				if better(res, best) {
					best = res
				}
			}
		case <-timer.C:
			if !answered && !final {
				cancelAll(nil, false)
				p.respond(f.tx, f.req, 408, reasonNoAnswer)
				final = true
			}
		case <-callerGone:
			callerGone = nil
			// The caller's CANCEL: sipgo answered it 200 and the INVITE
			// 487; every branch is cancelled (RFC 3261 §16.10).
			if !answered {
				// A fork on another node's behalf is cancelled because a
				// device there answered (hop.go).
				cancelAll(nil, answeredElsewhere(f.tx))
				final = true
			}
		}
	}
	if !answered && !final {
		if best == nil {
			best = sip.NewResponseFromRequest(f.req, 480, reasonOffline, nil)
		}
		f.respondUpstream(best)
	}
}

// better reports whether a final non-2xx response res should be the one
// the caller gets over cur (RFC 3261 §16.7 step 6): the lowest class,
// and within 4xx the most telling: busy over the rest, and a device's
// own answer over a cancelled or timed out branch.
func better(res, cur *sip.Response) bool {
	if cur == nil {
		return true
	}
	rc, cc := res.StatusCode/100, cur.StatusCode/100
	if rc != cc {
		return rc < cc
	}
	rank := func(code int) int {
		switch code {
		case 486:
			return 0
		case 487, 408:
			return 2
		}
		return 1
	}
	return rank(res.StatusCode) < rank(cur.StatusCode)
}

// send forwards the INVITE to one device over its own TLS connection,
// record-routed through the node (RFC 3261 §16.6).
func (f *fork) send(ctx context.Context, t target) (*branch, error) {
	p := f.r.p
	if _, ok := nodeOf(t.source); ok {
		return f.sendHop(ctx, t)
	}
	req := f.req.Clone()
	req.Recipient = t.contact
	// The node is the only hop: a Route that brought the request here is
	// spent, and no other may send it elsewhere.
	for req.RemoveHeader("Route") {
	}
	for req.RemoveHeader("P-Asserted-Identity") {
	}
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:"+f.caller.id.Account+";gr="+f.caller.id.Device+">"))
	decMaxForwards(req)
	rr := f.r.recordRoute(t.source)
	req.PrependHeader(sip.NewHeader("Record-Route", rr))
	req.SetTransport("TLS")
	req.SetDestination(t.source)
	tx, err := p.cli.TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
	if err != nil {
		return nil, err
	}
	return &branch{t: t, req: req, tx: tx, rr: rr}, nil
}

// recordRoute is the node's Record-Route value as a device on the
// connection from source reaches it: the local address of that connection,
// so the device's in-dialog requests go back over the same connection.
func (r *router) recordRoute(source string) string {
	host := net.JoinHostPort(r.p.cfg.Domain, "5061")
	if c := r.p.conn(source); c != nil {
		host = c.LocalAddr().String()
	}
	return "<sip:" + host + ";transport=tls;lr>"
}

// relay forwards a response of a branch to the caller: our Via removed,
// our Record-Route rewritten to the address the caller reaches us at
// (RFC 3261 §16.7 step 9; a proxy may rewrite its own Record-Route).
func (f *fork) relay(b *branch, res *sip.Response) {
	out := res.Clone()
	out.RemoveHeader("Via")
	rrs := out.GetHeaders("Record-Route")
	if len(rrs) > 0 {
		vals := make([]string, len(rrs))
		for i, h := range rrs {
			vals[i] = h.Value()
			if vals[i] == b.rr {
				vals[i] = f.r.recordRoute(f.caller.source)
			}
		}
		for out.RemoveHeader("Record-Route") {
		}
		for _, v := range vals {
			out.AppendHeader(sip.NewHeader("Record-Route", v))
		}
	}
	if err := f.tx.Respond(out); err != nil {
		f.r.p.log.Debug("relay call response", "err", err)
	}
}

// respondUpstream sends the caller a final non-2xx answer chosen among
// the branches', with the status and reason of the device.
func (f *fork) respondUpstream(res *sip.Response) {
	f.r.p.respond(f.tx, f.req, res.StatusCode, res.Reason)
}

// sendCancel cancels one branch (RFC 3261 §9.1): the CANCEL has the
// branch INVITE's Via, Call-ID, From, To and CSeq number.
func (f *fork) sendCancel(b *branch) {
	if b.done {
		return
	}
	b.cancel = false
	inv := b.req
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
	if b.elsewhere {
		// RFC 3326 §2; the device shows "answered elsewhere", not "missed".
		c.AppendHeader(sip.NewHeader("Reason", `SIP;cause=200;text="Call completed elsewhere"`))
	}
	c.SetBody(nil) // Content-Length: 0, which a stream needs
	c.SetTransport("TLS")
	c.SetDestination(b.t.source)
	if _, ok := nodeOf(b.t.source); ok {
		if err := f.r.p.hopWrite(c); err != nil {
			f.r.p.log.Debug("cancel call branch", "err", err)
		}
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(f.r.p.ctx, 10*time.Second)
		defer cancel()
		if _, err := f.r.p.cli.Do(ctx, c, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
			f.r.p.log.Debug("cancel call branch", "err", err)
		}
	}()
}

// release ACKs and hangs up a branch whose device answered after another
// had: the caller has its call, this device must stop.
func (f *fork) release(b *branch, res *sip.Response) {
	p := f.r.p
	contact := b.t.contact
	if c := res.Contact(); c != nil {
		contact = c.Address
	}
	for _, m := range []sip.RequestMethod{sip.ACK, sip.BYE} {
		req := sip.NewRequest(m, contact)
		for _, name := range []string{"From", "Call-ID"} {
			if h := b.req.GetHeader(name); h != nil {
				req.AppendHeader(sip.HeaderClone(h))
			}
		}
		if h := res.To(); h != nil {
			req.AppendHeader(sip.HeaderClone(h))
		}
		seq := b.req.CSeq().SeqNo
		if m == sip.BYE {
			seq++
		}
		req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: m})
		mf := sip.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
		req.SetBody(nil)
		req.SetTransport("TLS")
		req.SetDestination(b.t.source)
		if _, ok := nodeOf(b.t.source); ok {
			if err := p.hopWrite(req); err != nil {
				p.log.Debug("release late call branch", "method", string(m), "err", err)
			}
			continue
		}
		ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
		var err error
		if m == sip.ACK {
			err = p.cli.WriteRequest(req, sipgo.ClientRequestAddVia)
		} else {
			_, err = p.cli.Do(ctx, req, sipgo.ClientRequestAddVia)
		}
		cancel()
		if err != nil {
			p.log.Debug("release late call branch", "method", string(m), "err", err)
			return
		}
	}
}

// onCancel answers a CANCEL that matched no INVITE transaction (sipgo
// handles those that do): RFC 3261 §16.10, 481.
func (r *router) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	r.p.respond(tx, req, 481, "Call/Transaction Does Not Exist")
}
