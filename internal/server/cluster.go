package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/phonex/phonex/internal/bus"
	"github.com/phonex/phonex/internal/server/proxy"
)

// clusterLink is the node's connection to the bus, and the proxy it
// routes for once that runs.
type clusterLink struct {
	bus   *bus.Bus
	proxy atomic.Pointer[proxy.Proxy]
}

// joinBus connects to the configured bus; nil when the node runs alone.
// It does not wait for NATS: the connection is retried in the background.
func (n *Node) joinBus() (*clusterLink, error) {
	c := n.cfg.Cluster
	if c.Bus == "" {
		return nil, nil
	}
	l := &clusterLink{}
	id := c.nodeID()
	b, err := bus.Connect(bus.Config{URL: c.Bus, Node: id, Cluster: n.cfg.Domain, Log: n.log,
		Connected: func() {
			if p := l.proxy.Load(); p != nil {
				p.BusConnected()
			}
		},
		Disconnected: func() {
			if p := l.proxy.Load(); p != nil {
				p.BusDisconnected()
			}
		}})
	if err != nil {
		return nil, err
	}
	l.bus = b
	n.checks.Add("bus", func(context.Context) error { return b.Ready() }) // /readyz
	n.log.Info("cluster: joining the bus", "node", id)
	n.mu.Lock()
	n.link = l
	n.mu.Unlock()
	return l, nil
}

func (l *clusterLink) busOf() *bus.Bus {
	if l == nil {
		return nil
	}
	return l.bus
}

func (l *clusterLink) attach(p *proxy.Proxy) {
	if l != nil && p != nil {
		l.proxy.Store(p)
	}
}

// ErrAlone is BusReady's answer for a node without a bus.
var ErrAlone = errors.New("node runs alone: no bus configured")

// BusReady reports whether the node reaches the cluster's bus (readiness).
func (n *Node) BusReady() error {
	n.mu.Lock()
	l := n.link
	n.mu.Unlock()
	if l == nil {
		return ErrAlone
	}
	if err := l.bus.Ready(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

func (n *Node) leaveBus() {
	n.mu.Lock()
	l := n.link
	n.mu.Unlock()
	if l != nil {
		l.bus.Close()
	}
}
