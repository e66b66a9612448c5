package proxy

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonex/phonex/internal/bus"
	"github.com/phonex/phonex/internal/pidf"
	"github.com/phonex/phonex/internal/server/presence"
)

// Routing between the nodes of a cluster (docs/cluster.md). Messages live
// only in the shared store: the node that accepts a MESSAGE stores the
// copies, kicks the devices it holds and publishes a wake-up for the
// others; the node holding a woken device runs its ordinary delivery from
// the store, so per-device order and forgetting on a final answer work as
// on a single node. A registration tells the other nodes that this node
// now holds the device (an older binding elsewhere is let go), and
// presence changes of held devices are mirrored into every node's
// presence agent, which notifies that node's own watchers.
//
// Bus events are at most once. What a lost event costs: a wake-up, the
// delay until the device registers again or the bus reconnects (every
// held device is kicked then, and polled while the bus is down); a
// presence change, until the holding node repeats its devices' state
// (when any node joins or reconnects) or is declared gone.

// Timing of the cluster's liveness: every node beats; one silent for
// nodeGone loses its devices' presence on the others.
var (
	beatEvery = 5 * time.Second
	nodeGone  = 16 * time.Second
	pollEvery = 2 * time.Second // held devices re-read while the bus is down
)

// helloWait gathers the hellos of nodes coming back together into one
// repeat of this node's presence.
const helloWait = 200 * time.Millisecond

// clusterState is the proxy's side of the bus; zero when alone.
type clusterState struct {
	bus     *bus.Bus
	down    atomic.Bool // bus disconnected: poll held devices
	serving atomic.Bool // runCluster started: the proxy's context is set
	// repeating: a repeat of this node's presence is scheduled; hellos
	// arriving meanwhile (every node after a NATS restart) share it.
	repeating atomic.Bool

	beat, gone, poll time.Duration // beatEvery, nodeGone, pollEvery when the proxy was made

	mu     sync.Mutex
	remote map[devKey]string    // devices shown online for another node: which
	etags  map[devKey]string    // mirrored publications' entity tags here
	own    map[devKey]ownPub    // held devices' publications, repeated on hello
	seen   map[string]time.Time // nodes, when last heard

	hops hopState // hop.go
}

type devKey struct{ account, device string }

type ownPub struct {
	state   pidf.State
	note    string
	expires time.Time
}

// initCluster joins the bus when the proxy has one.
func (p *Proxy) initCluster() {
	if p.cfg.Bus == nil {
		return
	}
	c := &p.cluster
	c.bus = p.cfg.Bus
	c.remote, c.etags, c.own, c.seen = map[devKey]string{}, map[devKey]string{}, map[devKey]ownPub{}, map[string]time.Time{}
	c.beat, c.gone, c.poll = beatEvery, nodeGone, pollEvery
	c.hops = hopState{out: map[string]*hopClientTx{}, in: map[string]*hopServerTx{}, holders: map[int64]string{}}
	// Calls held on this node show on every node.
	p.cfg.Calls = sharedCalls{inner: p.cfg.Calls, p: p}
}

// runCluster subscribes to the other nodes and keeps time until ctx ends.
func (p *Proxy) runCluster(ctx context.Context) {
	c := &p.cluster
	if c.bus == nil {
		return
	}
	if err := c.bus.Subscribe(p.onBusEvent, bus.KindWake, bus.KindHeld, bus.KindPresence, bus.KindHello, bus.KindBeat); err != nil {
		p.log.Error("cluster: subscribe", "err", err)
	}
	if err := c.bus.SubscribeSIP(p.onHop); err != nil {
		p.log.Error("cluster: subscribe", "err", err)
	}
	c.serving.Store(true)
	p.busUp()
	beat := time.NewTicker(c.beat)
	poll := time.NewTicker(c.poll)
	defer beat.Stop()
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-beat.C:
			p.publish(bus.Event{Kind: bus.KindBeat})
			p.forgetSilentNodes(now)
		case <-poll.C:
			if c.down.Load() || c.bus.Ready() != nil {
				c.down.Store(true)
				p.kickHeld()
			}
		}
	}
}

// BusConnected and BusDisconnected follow the bus's connection (the
// node wires them to bus.Config).
func (p *Proxy) BusConnected() {
	if !p.cluster.serving.Load() {
		return // not serving yet: runCluster announces the node
	}
	p.busUp()
}

// BusDisconnected: see BusConnected.
func (p *Proxy) BusDisconnected() { p.cluster.down.Store(true) }

// busUp announces the node and catches up on whatever was missed while
// the bus was down: wake-ups (every held device is read again) and
// presence (the others repeat theirs on hello; this node repeats its own).
func (p *Proxy) busUp() {
	p.cluster.down.Store(false)
	p.publish(bus.Event{Kind: bus.KindHello})
	p.repeatPresence()
	p.kickHeld()
}

func (p *Proxy) publish(e bus.Event) {
	defer p.cfg.Metrics.BusOp("publish", time.Now())
	if err := p.cluster.bus.Publish(e); err != nil {
		p.log.Warn("cluster: publish", "kind", string(e.Kind), "err", err)
	}
}

// kickHeld starts delivery to every device held here.
func (p *Proxy) kickHeld() {
	p.mu.Lock()
	ids := make([]int64, 0, len(p.bindings))
	for id := range p.bindings {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	for _, id := range ids {
		p.kick(id)
	}
}

// wakeElsewhere tells the other nodes about copies stored for devices
// this node does not hold.
func (p *Proxy) wakeElsewhere(deviceIDs []int64) {
	if p.cluster.bus == nil {
		return
	}
	var out []int64
	p.mu.Lock()
	for _, id := range deviceIDs {
		if p.bindings[id] == nil {
			out = append(out, id)
		}
	}
	p.mu.Unlock()
	for len(out) > 0 {
		n := min(len(out), bus.MaxDevices)
		p.publish(bus.Event{Kind: bus.KindWake, Devices: out[:n]})
		out = out[n:]
	}
}

// held tells the other nodes this node now holds a device's connection.
func (p *Proxy) held(deviceID int64) {
	if p.cluster.bus != nil {
		p.heldBy(deviceID, "")
		p.publish(bus.Event{Kind: bus.KindHeld, Devices: []int64{deviceID}})
	}
}

// sharePresence publishes a change of a device held here.
func (p *Proxy) sharePresence(ch bus.Presence) {
	c := &p.cluster
	if c.bus == nil {
		return
	}
	k := devKey{ch.Account, ch.Device}
	c.mu.Lock()
	switch ch.Change {
	case bus.ChangePublished:
		switch {
		case ch.Expires == 0:
			delete(c.own, k)
		case ch.HasState:
			c.own[k] = ownPub{state: pidf.State(ch.State), note: ch.Note, expires: time.Now().Add(time.Duration(ch.Expires) * time.Millisecond)}
		default:
			if o, ok := c.own[k]; ok {
				o.expires = time.Now().Add(time.Duration(ch.Expires) * time.Millisecond)
				c.own[k] = o
			}
		}
	case bus.ChangeConnected:
		delete(c.remote, k) // held here now
	}
	c.mu.Unlock()
	p.publish(bus.Event{Kind: bus.KindPresence, Presence: &ch})
}

// repeatPresence publishes what every device held here shows.
func (p *Proxy) repeatPresence() {
	if p.ctx.Err() != nil {
		return // the node is stopping
	}
	ps := &p.presence
	type held struct {
		k   devKey
		exp time.Time
	}
	var hs []held
	ps.mu.Lock()
	for _, d := range ps.devices {
		hs = append(hs, held{devKey{d.account, d.device}, d.expires})
	}
	ps.mu.Unlock()
	now := time.Now()
	for _, h := range hs {
		info := p.infoOf(h.k)
		p.publish(bus.Event{Kind: bus.KindPresence, Presence: &bus.Presence{Change: bus.ChangeConnected, Account: h.k.account, Device: h.k.device,
			Caps: info.Caps, CertHash: info.CertHash, CertNotBefore: unixOrZero(info.CertNotBefore), Until: h.exp.UnixMilli()}})
		p.cluster.mu.Lock()
		o, ok := p.cluster.own[h.k]
		p.cluster.mu.Unlock()
		if ok && o.expires.After(now) {
			p.publish(bus.Event{Kind: bus.KindPresence, Presence: &bus.Presence{Change: bus.ChangePublished, Account: h.k.account, Device: h.k.device,
				State: string(o.state), Note: o.note, HasState: true, Expires: o.expires.Sub(now).Milliseconds()}})
		}
	}
}

func unixOrZero(t time.Time) int64 {
	if t.IsZero() || t.Unix() < 0 {
		return 0
	}
	return t.Unix()
}

// infoOf reads a device's presence facts from the store.
func (p *Proxy) infoOf(k devKey) presence.DeviceInfo {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	dev, err := p.cfg.Store.DeviceByName(ctx, k.account, k.device)
	if err != nil {
		return presence.DeviceInfo{}
	}
	return deviceInfo(dev.Cert, dev.Caps)
}

// connectedChange is the Connected event of a device registered here.
func connectedChange(id *Identity, info presence.DeviceInfo, until time.Time) bus.Presence {
	return bus.Presence{Change: bus.ChangeConnected, Account: id.Account, Device: id.Device, Caps: info.Caps, CertHash: info.CertHash,
		CertNotBefore: unixOrZero(info.CertNotBefore), Until: until.UnixMilli()}
}

func (p *Proxy) onBusEvent(e bus.Event) {
	c := &p.cluster
	c.mu.Lock()
	c.seen[e.Node] = time.Now()
	c.mu.Unlock()
	switch e.Kind {
	case bus.KindWake:
		for _, id := range e.Devices {
			p.kick(id)
		}
	case bus.KindHeld:
		p.heldBy(e.Devices[0], e.Node)
		p.letGo(e.Devices[0], e.Node)
	case bus.KindPresence:
		p.mirror(e.Node, *e.Presence)
	case bus.KindHello:
		if c.repeating.CompareAndSwap(false, true) {
			time.AfterFunc(helloWait, func() {
				c.repeating.Store(false)
				p.repeatPresence()
			})
		}
	}
}

// letGo drops this node's binding of a device another node now holds:
// delivery runs there. Its presence is that node's to report from now.
func (p *Proxy) letGo(deviceID int64, node string) {
	p.mu.Lock()
	b := p.bindings[deviceID]
	if b != nil {
		if b.retry != nil {
			b.retry.Stop()
		}
		delete(p.bindings, deviceID)
	}
	p.mu.Unlock()
	ps := &p.presence
	ps.mu.Lock()
	d := ps.devices[deviceID]
	delete(ps.devices, deviceID)
	ps.mu.Unlock()
	if d != nil {
		k := devKey{d.account, d.device}
		p.cluster.mu.Lock()
		p.cluster.remote[k] = node
		delete(p.cluster.own, k)
		p.cluster.mu.Unlock()
	}
	if b != nil {
		p.log.Debug("cluster: device moved to another node", "node", node)
	}
}

// heldHere reports whether this node holds the device named k.
func (p *Proxy) heldHere(k devKey) bool {
	ps := &p.presence
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for _, d := range ps.devices {
		if d.account == k.account && d.device == k.device {
			return true
		}
	}
	return false
}

// mirror applies another node's presence change to this node's agent.
func (p *Proxy) mirror(node string, ch bus.Presence) {
	c := &p.cluster
	k := devKey{ch.Account, ch.Device}
	switch ch.Change {
	case bus.ChangeConnected:
		info := presence.DeviceInfo{Caps: ch.Caps, CertHash: ch.CertHash}
		if ch.CertNotBefore > 0 {
			info.CertNotBefore = time.Unix(ch.CertNotBefore, 0).UTC()
		}
		c.mu.Lock()
		c.remote[k] = node
		c.mu.Unlock()
		p.pres.Connected(ch.Account, ch.Device, info)
	case bus.ChangeDisconnected:
		c.mu.Lock()
		owner, ok := c.remote[k]
		if ok && owner == node {
			delete(c.remote, k)
		}
		c.mu.Unlock()
		// Only the node that showed the device online takes it offline:
		// a device that moved is another node's now.
		if ok && owner == node && !p.heldHere(k) {
			p.pres.Disconnected(ch.Account, ch.Device)
		}
	case bus.ChangePublished:
		exp := time.Duration(ch.Expires) * time.Millisecond
		c.mu.Lock()
		etag := c.etags[k]
		c.mu.Unlock()
		var err error
		var tag string
		switch {
		case ch.HasState && exp > 0:
			tag, err = p.pres.Publish(ch.Account, ch.Device, "", pidf.State(ch.State), ch.Note, true, exp)
		case etag != "":
			tag, err = p.pres.Publish(ch.Account, ch.Device, etag, "", "", false, exp)
		default:
			return // a refresh of a publication never seen here
		}
		if err != nil {
			tag = ""
		}
		c.mu.Lock()
		if tag == "" {
			delete(c.etags, k)
		} else {
			c.etags[k] = tag
		}
		c.mu.Unlock()
	case bus.ChangeCallStarted:
		p.pres.CallStarted(ch.Account, ch.Device)
	case bus.ChangeCallEnded:
		p.pres.CallEnded(ch.Account, ch.Device)
	}
}

// forgetSilentNodes takes offline the devices of nodes not heard for
// nodeGone: a node killed outright says nothing.
func (p *Proxy) forgetSilentNodes(now time.Time) {
	c := &p.cluster
	var gone []devKey
	c.mu.Lock()
	for k, o := range c.own {
		if now.After(o.expires) {
			delete(c.own, k)
		}
	}
	for node, at := range c.seen {
		if now.Sub(at) < c.gone {
			continue
		}
		delete(c.seen, node)
		c.hops.mu.Lock()
		for id, n := range c.hops.holders {
			if n == node {
				delete(c.hops.holders, id)
			}
		}
		c.hops.mu.Unlock()
		for k, owner := range c.remote {
			if owner == node {
				gone = append(gone, k)
				delete(c.remote, k)
				delete(c.etags, k)
			}
		}
	}
	c.mu.Unlock()
	for _, k := range gone {
		if !p.heldHere(k) {
			p.pres.Disconnected(k.account, k.device)
		}
	}
}

// sharedCalls tells the other nodes about calls routed here.
type sharedCalls struct {
	inner CallObserver
	p     *Proxy
}

func (s sharedCalls) CallStarted(account, device string) {
	if s.inner != nil {
		s.inner.CallStarted(account, device)
	}
	s.p.publish(bus.Event{Kind: bus.KindPresence, Presence: &bus.Presence{Change: bus.ChangeCallStarted, Account: account, Device: device}})
}

func (s sharedCalls) CallEnded(account, device string) {
	if s.inner != nil {
		s.inner.CallEnded(account, device)
	}
	s.p.publish(bus.Event{Kind: bus.KindPresence, Presence: &bus.Presence{Change: bus.ChangeCallEnded, Account: account, Device: device}})
}
