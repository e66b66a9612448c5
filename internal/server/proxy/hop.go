package proxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/bus"
	"github.com/phonex/phonex/internal/store"
)

// Calls across nodes (docs/cluster.md). The node that accepts an INVITE
// authenticates and gates it as always, then forks it: a branch to each
// device it holds, and one branch to each other node holding a device of
// the callee. Such a branch is a hop over the bus: the holding node forks
// it to its own devices, record-routed like any call, and hands the
// responses back. A leg held by another node has the source "node:<id>",
// and whatever the router sends to such a leg (ACK, CANCEL, BYE and the
// other in-dialog requests, with their responses) goes over the bus to
// that node instead of over a TLS connection. Each node keeps its own
// dialog, so in-dialog requests pass both nodes (RFC 3261 §16.12).

const nodeSource = "node:"

// nodeOf is the node holding a leg whose source is "node:<id>".
func nodeOf(source string) (string, bool) { return strings.CutPrefix(source, nodeSource) }

// hopTimeout bounds a non-INVITE hop transaction (RFC 3261 §17.1.2.2:
// 64*T1); an INVITE's is the ring timeout and this.
const hopTimeout = 32 * time.Second

// errNoBus is a hop without a bus to carry it.
var errNoBus = errors.New("cluster: no bus")

// hopState tracks hop transactions and which node holds which device.
type hopState struct {
	mu      sync.Mutex
	out     map[string]*hopClientTx // requests sent to other nodes, by hop id
	in      map[string]*hopServerTx // INVITEs from other nodes, by node and Via branch
	holders map[int64]string        // device id → the node that said it holds it
}

func newHopID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// hopClientTx is a request sent to another node, seen as a client
// transaction: its responses come back over the bus.
type hopClientTx struct {
	s    *hopState
	id   string
	res  chan *sip.Response
	done chan struct{}
	once sync.Once
}

func (t *hopClientTx) Responses() <-chan *sip.Response        { return t.res }
func (t *hopClientTx) Done() <-chan struct{}                  { return t.done }
func (t *hopClientTx) Err() error                             { return nil }
func (t *hopClientTx) OnTerminate(sip.FnTxTerminate) bool     { return false }
func (t *hopClientTx) OnRetransmission(sip.FnTxResponse) bool { return false }

// Terminate forgets the transaction; responses still coming are dropped.
func (t *hopClientTx) Terminate() {
	t.once.Do(func() {
		t.s.mu.Lock()
		delete(t.s.out, t.id)
		t.s.mu.Unlock()
		close(t.done)
	})
}

// hopServerTx is a request from another node, answered over the bus.
type hopServerTx struct {
	p         *Proxy
	node      string
	id        string // the hop id the responses carry
	key       string // in hopState.in (INVITEs only)
	req       *sip.Request
	done      chan struct{}
	once      sync.Once
	mu        sync.Mutex
	final     bool
	elsewhere bool // cancelled because another device answered
	cancel    []sip.FnTxCancel
}

// answeredElsewhere reports whether tx is a hop INVITE its sending node
// cancelled because a device it reached answered.
func answeredElsewhere(tx sip.ServerTransaction) bool {
	t, ok := tx.(*hopServerTx)
	if !ok {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.elsewhere
}

func (t *hopServerTx) Done() <-chan struct{}              { return t.done }
func (t *hopServerTx) Err() error                         { return nil }
func (t *hopServerTx) Acks() <-chan *sip.Request          { return nil }
func (t *hopServerTx) OnTerminate(sip.FnTxTerminate) bool { return false }
func (t *hopServerTx) OnCancel(f sip.FnTxCancel) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cancel = append(t.cancel, f)
	return true
}

func (t *hopServerTx) Terminate() {
	t.once.Do(func() {
		if t.key != "" {
			s := &t.p.cluster.hops
			s.mu.Lock()
			delete(s.in, t.key)
			s.mu.Unlock()
		}
		close(t.done)
	})
}

// Respond hands a response back to the node that sent the request.
func (t *hopServerTx) Respond(res *sip.Response) error {
	t.mu.Lock()
	if t.final {
		t.mu.Unlock()
		return nil
	}
	if !res.IsProvisional() {
		t.final = true
	}
	t.mu.Unlock()
	return t.p.cluster.bus.PublishTo(bus.Hop{To: t.node, Tx: t.id, Msg: []byte(res.String())})
}

// cancelled ends an INVITE the sending node cancelled: 487 for it (RFC
// 3261 §9.2), then its fork cancels the branches as for a caller's CANCEL.
func (t *hopServerTx) cancelled(c *sip.Request) {
	t.mu.Lock()
	fs := t.cancel
	if h := c.GetHeader("Reason"); h != nil && strings.Contains(h.Value(), "cause=200") {
		t.elsewhere = true // RFC 3326 §2
	}
	t.mu.Unlock()
	for _, f := range fs {
		f(c)
	}
	t.Respond(sip.NewResponseFromRequest(t.req, 487, "Request Terminated", nil))
	t.Terminate()
}

// hopRequest sends req to the node of its destination leg and returns its
// transaction. The node's own Via goes on top, as a proxy's would (RFC
// 3261 §16.6 step 8), so the responses find their way back through it.
func (p *Proxy) hopRequest(ctx context.Context, req *sip.Request, caller *Identity, timeout time.Duration) (sip.ClientTransaction, error) {
	node, _ := nodeOf(req.Destination())
	if p.cluster.bus == nil {
		return nil, errNoBus
	}
	addHopVia(req, p.cfg.Domain)
	s := &p.cluster.hops
	t := &hopClientTx{s: s, id: newHopID(), res: make(chan *sip.Response, 16), done: make(chan struct{})}
	s.mu.Lock()
	s.out[t.id] = t
	s.mu.Unlock()
	h := bus.Hop{To: node, Tx: t.id, Msg: []byte(req.String())}
	if caller != nil {
		h.Caller = &bus.Caller{AccountID: caller.AccountID, DeviceID: caller.DeviceID, Account: caller.Account, Device: caller.Device}
	}
	if err := p.cluster.bus.PublishTo(h); err != nil {
		t.Terminate()
		return nil, err
	}
	go func() {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
		case <-t.done:
		}
		t.Terminate()
	}()
	return t, nil
}

func addHopVia(req *sip.Request, domain string) {
	v := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "TLS", Host: domain, Port: 5061, Params: sip.NewParams()}
	v.Params.Add("branch", sip.GenerateBranch())
	req.PrependHeader(v)
}

// hopWrite sends a request that gets no response back (ACK, and CANCEL,
// whose 200 tells the sender nothing it needs).
func (p *Proxy) hopWrite(req *sip.Request) error {
	node, _ := nodeOf(req.Destination())
	if p.cluster.bus == nil {
		return errNoBus
	}
	if req.Method == sip.ACK {
		addHopVia(req, p.cfg.Domain)
	}
	return p.cluster.bus.PublishTo(bus.Hop{To: node, Tx: newHopID(), Msg: []byte(req.String())})
}

// transactionLeg sends req to a leg: over the bus to the node holding
// it, or over the leg's connection (a device's, or a peer cluster's).
func (r *router) transactionLeg(ctx context.Context, to leg, req *sip.Request) (sip.ClientTransaction, error) {
	if _, ok := nodeOf(to.source); ok {
		return r.p.hopRequest(ctx, req, nil, hopTimeout)
	}
	return r.clientOf(to).TransactionRequest(ctx, req, sipgo.ClientRequestAddVia)
}

// writeLeg sends a request without a transaction (ACK) to a leg.
func (r *router) writeLeg(to leg, req *sip.Request) error {
	if _, ok := nodeOf(to.source); ok {
		return r.p.hopWrite(req)
	}
	return r.clientOf(to).WriteRequest(req, sipgo.ClientRequestAddVia)
}

// legAlive reports whether a leg can still be reached: its node is alive,
// or its connection is up.
func (r *router) legAlive(l leg) bool {
	if _, ok := nodeOf(l.source); ok {
		return r.p.legUp(l.source)
	}
	return r.legOpen(l)
}

// legUp reports whether a leg can still be reached: its connection is
// open, or its node is alive.
func (p *Proxy) legUp(source string) bool {
	if node, ok := nodeOf(source); ok {
		c := &p.cluster
		c.mu.Lock()
		at, ok := c.seen[node]
		c.mu.Unlock()
		return ok && time.Since(at) < c.gone
	}
	return p.conn(source) != nil
}

// onHop takes a SIP message another node sent to this one.
func (p *Proxy) onHop(e bus.Event) {
	c := &p.cluster
	c.mu.Lock()
	c.seen[e.Node] = time.Now()
	c.mu.Unlock()
	h := e.Hop
	msg, err := sip.ParseMessage(h.Msg)
	if err != nil {
		p.log.Warn("cluster: dropped a sip hop", "err", err)
		return
	}
	switch m := msg.(type) {
	case *sip.Response:
		s := &p.cluster.hops
		s.mu.Lock()
		t := s.out[h.Tx]
		s.mu.Unlock()
		if t == nil {
			return // its transaction ended
		}
		select {
		case t.res <- m:
		default:
			p.log.Warn("cluster: dropped a hop response; its transaction is not reading")
		}
	case *sip.Request:
		m.SetSource(nodeSource + e.Node)
		m.SetTransport("TLS")
		p.hopRequestIn(e.Node, h, m)
	}
}

func (p *Proxy) hopRequestIn(node string, h *bus.Hop, req *sip.Request) {
	r := p.router
	if req.CallID() == nil || req.Via() == nil || req.CSeq() == nil {
		return
	}
	branch, _ := req.Via().Params.Get("branch")
	key := node + "\x00" + branch
	s := &p.cluster.hops
	switch {
	case req.Method == sip.ACK:
		r.onAck(req, nil)
	case req.Method == sip.CANCEL:
		s.mu.Lock()
		t := s.in[key]
		s.mu.Unlock()
		if t != nil {
			t.cancelled(req)
		}
	case req.Method == sip.INVITE && toTag(req) == "" && h.Caller != nil:
		t := &hopServerTx{p: p, node: node, id: h.Tx, key: key, req: req, done: make(chan struct{})}
		s.mu.Lock()
		s.in[key] = t
		s.mu.Unlock()
		go func() {
			defer t.Terminate()
			r.hopInvite(req, t, Identity{AccountID: h.Caller.AccountID, DeviceID: h.Caller.DeviceID, Account: h.Caller.Account, Device: h.Caller.Device})
		}()
	default:
		t := &hopServerTx{p: p, node: node, id: h.Tx, req: req, done: make(chan struct{})}
		go func() {
			defer t.Terminate()
			if req.Method == sip.INVITE {
				r.onInvite(req, t)
			} else {
				r.inDialog(req, t)
			}
		}()
	}
}

// hopInvite forks an INVITE another node accepted (and gated) to the
// devices of the callee this node holds.
func (r *router) hopInvite(req *sip.Request, tx sip.ServerTransaction, caller Identity) {
	p := r.p
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	to, err := p.accountOf(req.Recipient)
	if err != nil {
		p.respond(tx, req, 404, "Not Found")
		return
	}
	callee, err := p.cfg.Store.Account(ctx, to.String())
	if err != nil {
		p.respond(tx, req, 480, reasonOffline)
		return
	}
	device := ""
	if req.Recipient.UriParams != nil {
		device, _ = req.Recipient.UriParams.Get("device")
	}
	targets, err := r.targets(ctx, callee, &caller, device)
	if err != nil {
		p.internal(tx, req, err)
		return
	}
	if len(targets) == 0 {
		p.respond(tx, req, 480, reasonOffline)
		return
	}
	r.forkTo(req, tx, caller, targets)
}

// forkTo runs the fork of an initial INVITE to targets.
func (r *router) forkTo(req *sip.Request, tx sip.ServerTransaction, caller Identity, targets []target) {
	p := r.p
	callID := req.CallID().Value()
	r.mu.Lock()
	if r.forks[callID] != nil || r.dialogs[callID] != nil || len(r.dialogs) >= maxDialogs {
		r.mu.Unlock()
		p.respond(tx, req, 482, "Loop Detected")
		return
	}
	f := &fork{r: r, req: req, tx: tx, caller: leg{id: caller, source: req.Source()}, callID: callID}
	r.forks[callID] = f
	r.mu.Unlock()
	f.run(targets)
	r.mu.Lock()
	delete(r.forks, callID)
	r.mu.Unlock()
}

// remoteTargets are the other nodes holding a device of the callee that
// this node does not hold: one branch per node, which forks it there.
func (r *router) remoteTargets(ctx context.Context, callee store.Account, caller *Identity, recipient sip.Uri) ([]target, error) {
	p := r.p
	if p.cluster.bus == nil || p.cluster.bus.Ready() != nil {
		// An INVITE buffered until the bus is back would ring long
		// after the caller gave up.
		return nil, nil
	}
	active, err := p.cfg.Store.ActiveDevices(ctx, callee.ID)
	if err != nil {
		return nil, err
	}
	s := &p.cluster.hops
	nodes := map[string]bool{}
	p.mu.Lock()
	s.mu.Lock()
	for _, d := range active {
		if d.ID == caller.DeviceID || p.bindings[d.ID] != nil {
			continue
		}
		if n := s.holders[d.ID]; n != "" {
			nodes[n] = true
		}
	}
	s.mu.Unlock()
	p.mu.Unlock()
	var out []target
	for n := range nodes {
		if !p.legUp(nodeSource + n) {
			continue
		}
		out = append(out, target{id: Identity{AccountID: callee.ID, Account: callee.Name}, source: nodeSource + n, contact: recipient})
	}
	return out, nil
}

// sendHop forwards the INVITE to another node's devices: the Request-URI
// stays the callee's address (that node picks the devices), the node
// record-routes so that in-dialog requests pass it.
func (f *fork) sendHop(ctx context.Context, t target) (*branch, error) {
	p := f.r.p
	req := f.req.Clone()
	for req.RemoveHeader("Route") {
	}
	decMaxForwards(req)
	rr := f.r.recordRoute(t.source)
	req.PrependHeader(sip.NewHeader("Record-Route", rr))
	req.SetTransport("TLS")
	req.SetDestination(t.source)
	ring := p.cfg.RingTimeout
	if ring <= 0 {
		ring = DefaultRingTimeout
	}
	tx, err := p.hopRequest(ctx, req, &f.caller.id, ring+hopTimeout)
	if err != nil {
		return nil, err
	}
	return &branch{t: t, req: req, tx: tx, rr: rr}, nil
}

// heldBy records which node holds a device, from its registration.
func (p *Proxy) heldBy(deviceID int64, node string) {
	s := &p.cluster.hops
	s.mu.Lock()
	if node == "" {
		delete(s.holders, deviceID)
	} else {
		s.holders[deviceID] = node
	}
	s.mu.Unlock()
}

// observe tells the call observer about the legs this node holds: a leg
// held by another node is that node's to report (and the bus shows it
// everywhere).
func (r *router) observe(d *dialog, started bool) {
	o := r.p.cfg.Calls
	if o == nil {
		return
	}
	for _, l := range []leg{d.caller, d.callee} {
		if _, ok := nodeOf(l.source); ok || l.remote() {
			continue // another node's or another cluster's to report
		}
		if started {
			o.CallStarted(l.id.Account, l.id.Device)
		} else {
			o.CallEnded(l.id.Account, l.id.Device)
		}
	}
}
