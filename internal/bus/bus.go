// Package bus carries the routing events between the nodes of a cluster
// over NATS (core publish/subscribe, at most once): wake-ups for devices
// with stored copies, which node holds a device's connection, and presence
// changes. The store stays the only place messages live; an event lost on
// the bus delays a delivery until the device's next registration or the
// node's next sweep, and never loses a message.
package bus

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Config configures a Bus.
type Config struct {
	URL     string // nats://host:port, several separated by commas
	Node    string // this node's id (CheckNodeID)
	Cluster string // subject namespace: the cluster's domain
	Log     *slog.Logger
	// Connected runs each time the connection is (re)established, on the
	// bus's goroutine: events published meanwhile by others were lost.
	Connected func()
	// Disconnected runs when the connection is lost.
	Disconnected func()
}

// ErrNotConnected is Ready's answer while the connection is down.
var ErrNotConnected = errors.New("bus: not connected to NATS")

// Bus is a node's connection to the cluster's NATS.
type Bus struct {
	cfg  Config
	nc   *nats.Conn
	mu   sync.Mutex
	subs []*nats.Subscription
}

// Connect joins the bus. It returns at once when NATS is not reachable
// yet: the connection is retried forever in the background, and Ready
// says when it is up.
func Connect(cfg Config) (*Bus, error) {
	if err := CheckNodeID(cfg.Node); err != nil {
		return nil, fmt.Errorf("bus: %w", err)
	}
	if cfg.Cluster == "" || strings.ContainsAny(cfg.Cluster, " \t*>") {
		return nil, fmt.Errorf("bus: cluster name %q", cfg.Cluster)
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	b := &Bus{cfg: cfg}
	opts := []nats.Option{
		nats.Name("phonexd " + cfg.Node),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ConnectHandler(func(*nats.Conn) { b.up(false) }),
		nats.ReconnectHandler(func(*nats.Conn) { b.up(true) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			cfg.Log.Warn("bus: disconnected from NATS; retrying", "err", err)
			if cfg.Disconnected != nil {
				cfg.Disconnected()
			}
		}),
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil && !errors.Is(err, nats.ErrNoServers) {
		return nil, fmt.Errorf("bus: connect %s: %w", redact(cfg.URL), err)
	}
	b.nc = nc
	return b, nil
}

func (b *Bus) up(again bool) {
	if again {
		b.cfg.Log.Info("bus: reconnected to NATS")
	} else {
		b.cfg.Log.Info("bus: connected to NATS")
	}
	if b.cfg.Connected != nil {
		b.cfg.Connected()
	}
}

// redact drops user and password from a URL for messages.
func redact(url string) string {
	if i := strings.Index(url, "@"); i >= 0 {
		if j := strings.Index(url, "://"); j >= 0 && j < i {
			return url[:j+3] + "…" + url[i:]
		}
	}
	return url
}

// Node is this node's id.
func (b *Bus) Node() string { return b.cfg.Node }

// Subject is where events of kind k travel in this cluster.
func (b *Bus) Subject(k Kind) string { return "phonex." + b.cfg.Cluster + "." + string(k) }

// Publish sends an event from this node. While the connection is down it
// is buffered and sent on reconnect (within NATS's reconnect buffer).
func (b *Bus) Publish(e Event) error {
	e.Node = b.cfg.Node
	data, err := Encode(e)
	if err != nil {
		return err
	}
	if err := b.nc.Publish(b.Subject(e.Kind), data); err != nil {
		return fmt.Errorf("bus: publish %s: %w", e.Kind, err)
	}
	return nil
}

// PublishTo sends a SIP hop to one node: only that node subscribes to
// its SIP subject.
func (b *Bus) PublishTo(h Hop) error {
	e := Event{Node: b.cfg.Node, Kind: KindSIP, Hop: &h}
	data, err := Encode(e)
	if err != nil {
		return err
	}
	if err := b.nc.Publish(b.Subject(KindSIP)+"."+h.To, data); err != nil {
		return fmt.Errorf("bus: publish sip: %w", err)
	}
	return nil
}

// SubscribeSIP runs h for every SIP hop sent to this node, one at a time
// in arrival order.
func (b *Bus) SubscribeSIP(h func(Event)) error {
	sub, err := b.nc.Subscribe(b.Subject(KindSIP)+"."+b.cfg.Node, func(m *nats.Msg) {
		e, err := Decode(m.Data)
		if err != nil || e.Kind != KindSIP || e.Hop.To != b.cfg.Node {
			b.cfg.Log.Warn("bus: dropped a sip hop", "err", err)
			return
		}
		h(e)
	})
	if err != nil {
		return fmt.Errorf("bus: subscribe sip: %w", err)
	}
	sub.SetPendingLimits(1<<16, 64<<20)
	b.mu.Lock()
	b.subs = append(b.subs, sub)
	b.mu.Unlock()
	return nil
}

// Subscribe runs h for every event of the kinds from other nodes, in the
// order of each kind's subject, one at a time per kind. Events that do
// not decode are dropped and logged.
func (b *Bus) Subscribe(h func(Event), kinds ...Kind) error {
	for _, k := range kinds {
		sub, err := b.nc.Subscribe(b.Subject(k), func(m *nats.Msg) {
			e, err := Decode(m.Data)
			if err != nil {
				b.cfg.Log.Warn("bus: dropped an event", "err", err)
				return
			}
			if e.Node == b.cfg.Node || e.Kind != k {
				return
			}
			h(e)
		})
		if err != nil {
			return fmt.Errorf("bus: subscribe %s: %w", k, err)
		}
		// Presence fan-outs come in bursts; the default pending limits
		// would drop them as a slow consumer.
		sub.SetPendingLimits(1<<16, 64<<20)
		b.mu.Lock()
		b.subs = append(b.subs, sub)
		b.mu.Unlock()
	}
	return nil
}

// Ready reports whether the connection to NATS is up (readiness checks).
func (b *Bus) Ready() error {
	if b.nc == nil || !b.nc.IsConnected() {
		return ErrNotConnected
	}
	return nil
}

// Flush waits until the server has seen everything published so far.
func (b *Bus) Flush(timeout time.Duration) error { return b.nc.FlushTimeout(timeout) }

// Close leaves the bus.
func (b *Bus) Close() {
	if b.nc != nil {
		b.nc.Close()
	}
}
