package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/operator"
	"github.com/phonex/phonex/internal/server/proxy"
	"github.com/phonex/phonex/internal/server/relay"
	"github.com/phonex/phonex/internal/store"
)

// liveState holds what runs in the node's memory that the admin panel
// reports: the SIP proxy and the relay once they run.
type liveState struct {
	mu    sync.Mutex
	proxy *proxy.Proxy
	relay *relay.Server
}

func (l *liveState) setProxy(p *proxy.Proxy) {
	l.mu.Lock()
	l.proxy = p
	l.mu.Unlock()
}

func (l *liveState) setRelay(r *relay.Server) {
	l.mu.Lock()
	l.relay = r
	l.mu.Unlock()
}

// Live is the node's in-memory state: figures a store does not hold.
type Live struct {
	SIPRunning       bool
	Registrations    int // devices with a live SIP binding
	ActiveCalls      int
	RelayRunning     bool
	RelayAllocations int
	PresenceSubs     int
	// Counters are the node's Prometheus counters summed by name and by
	// name{label=value}; nil when the node keeps no metrics.
	Counters map[string]float64
}

// Live reads the node's in-memory figures.
func (n *Node) Live() Live {
	var out Live
	n.live.mu.Lock()
	p, r := n.live.proxy, n.live.relay
	n.live.mu.Unlock()
	if p != nil {
		out.SIPRunning, out.Registrations, out.ActiveCalls = true, p.Registrations(), p.ActiveCalls()
	}
	if r != nil {
		out.RelayRunning, out.RelayAllocations = true, r.Stats().Allocations
	}
	n.mu.Lock()
	pres := n.pres
	n.mu.Unlock()
	if pres != nil {
		out.PresenceSubs, _ = pres.Counts()
	}
	if m := n.Metrics(); m != nil {
		out.Counters = gatherCounters(m.Registry())
	}
	return out
}

// Admin is the operator's service on the node's own store and operator
// service, for the admin panel in the node's process; As names the
// administrator each action is recorded under. Its Close does nothing:
// the store is the node's.
func (n *Node) Admin() *Admin {
	return &Admin{cfg: n.cfg, st: nopClose{n.st}, now: n.now, op: n.op, actor: "panel"}
}

// As is the same service acting for actor: the panel's administrator, as
// the audit log names them.
func (a *Admin) As(actor operator.Actor) *Admin {
	c := *a
	c.actor = actor
	return &c
}

type nopClose struct{ store.Store }

func (nopClose) Close() error { return nil }

// Store is the store the service works on.
func (a *Admin) Store() store.Store { return a.st }

// Config is the node's configuration.
func (a *Admin) Config() Config { return a.cfg }

// EnrollTarget is EnrollTarget with the running node's API address when
// it runs (its listener may have been given as port 0).
func (a *Admin) EnrollTarget() (addr, fingerprint string, err error) {
	cfg := a.cfg
	if l, ok := readListening(cfg.DataDir); ok && l.API != "" {
		cfg.APIAddr = l.API
	}
	return EnrollTarget(cfg)
}

// AccountSummary is what removing an account would lose, and what the
// panel shows of it: counts, never contact names or content.
type AccountSummary struct {
	User         string `json:"user"`
	Status       string `json:"status"`
	Devices      int    `json:"devices"`
	Phones       int    `json:"standard_phones"`
	Contacts     int    `json:"contacts"`
	WaitingBytes int64  `json:"waiting_bytes"`
}

// Summary counts what an account holds.
func (a *Admin) Summary(ctx context.Context, name string) (AccountSummary, error) {
	acct, err := a.account(name)
	if err != nil {
		return AccountSummary{}, err
	}
	rec, err := a.st.Account(ctx, acct.String())
	if err != nil {
		return AccountSummary{}, fmt.Errorf("%s: %w", acct, err)
	}
	ds, err := a.st.Devices(ctx, rec.ID)
	if err != nil {
		return AccountSummary{}, err
	}
	cs, err := a.st.Contacts(ctx, rec.ID)
	if err != nil {
		return AccountSummary{}, err
	}
	b, err := a.st.StoredBytes(ctx, rec.ID)
	if err != nil {
		return AccountSummary{}, err
	}
	s := AccountSummary{User: rec.Name, Status: rec.Status, Contacts: len(cs), WaitingBytes: b}
	for _, d := range ds {
		if d.Suite == SuiteSIP {
			s.Phones++
		} else {
			s.Devices++
		}
	}
	return s, nil
}

// Hook runs beside a node's listeners for as long as it serves (the admin
// panel); its error stops the node.
type Hook func(ctx context.Context, n *Node, ready func(string)) error

// RunWith is Run with hooks started once the node's listeners are up.
func RunWith(ctx context.Context, cfg Config, log *slog.Logger, ready func(string), hooks ...Hook) error {
	return run(ctx, cfg, log, ready, hooks)
}

// Logger is the node's logger.
func (n *Node) Logger() *slog.Logger { return n.log }

// Registered reports whether a device (user@domain/device) has a live SIP
// binding on this node; known is false when the node runs no SIP proxy.
func (n *Node) Registered(ctx context.Context, device string) (registered, known bool) {
	n.live.mu.Lock()
	p := n.live.proxy
	n.live.mu.Unlock()
	if p == nil {
		return false, false
	}
	id, err := ident.ParseDevice(device)
	if err != nil {
		return false, true
	}
	d, err := n.st.DeviceByName(ctx, id.Account.String(), id.Name)
	if err != nil {
		return false, true
	}
	return p.Registered(d.ID), true
}
