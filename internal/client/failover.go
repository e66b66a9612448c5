package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/api"
)

// A cluster of several nodes is reached at several API addresses, kept in
// the profile (Meta.Server first, then Meta.Servers). Every node answers for
// the whole cluster (the state is in the shared store), so a device uses
// one at a time and moves to the next when the one in use cannot be
// reached: an API call whose connection is refused goes to the next
// address at once, and listen, whose registration refresh finds a lost SIP
// connection, asks the next reachable node for its SIP address and
// registers there; the node then delivers every copy still waiting.
//
// Only a request that was never sent moves on (the dial failed): a request
// that may have reached a node is not repeated elsewhere, so nothing is
// done twice.

// ErrNoServer is a server list without an address.
var ErrNoServer = errors.New("no server address")

// ParseServers splits a comma-separated list of API addresses (host:port
// each), dropping repeats.
func ParseServers(list string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, fmt.Errorf("server %q: want HOST:PORT: %w", s, err)
		}
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrNoServer
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ServerList is the profile's API addresses in order of preference.
func (m *Meta) ServerList() []string {
	out := []string{m.Server}
	for _, s := range m.Servers {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// nodeList is a connection's addresses and the one in use.
type nodeList struct {
	mu   sync.Mutex
	list []string
	cur  int
}

func newNodeList(list []string) *nodeList { return &nodeList{list: list} }

func (l *nodeList) current() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.list[l.cur]
}

// try calls f with the address in use and, while f's connection cannot
// even be made, with the next ones; the first that connects becomes the
// one in use. It returns the address of the last call.
func (l *nodeList) try(f func(server string) error) (string, error) {
	l.mu.Lock()
	start, n := l.cur, len(l.list)
	list := l.list
	l.mu.Unlock()
	var server string
	var err error
	for i := range n {
		k := (start + i) % n
		server = list[k]
		if err = f(server); err == nil || !neverSent(err) {
			if i > 0 {
				l.mu.Lock()
				l.cur = k
				l.mu.Unlock()
			}
			return server, err
		}
	}
	return server, err
}

// neverSent reports whether err means the connection was never made, so
// the request reached no node.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// Servers are the API addresses of the profile's cluster, in order of
// preference. It needs no password: profile.json is not encrypted.
func Servers(dir string) ([]string, error) {
	m, err := readMeta(filepath.Join(dir, MetaFile))
	if err != nil {
		return nil, err
	}
	return m.ServerList(), nil
}

// SetServers replaces the profile's API addresses (a node added to or
// taken out of the cluster). The CA stays pinned: a new address must
// present a certificate of the same cluster.
func SetServers(dir string, servers []string) error {
	list, err := ParseServers(strings.Join(servers, ","))
	if err != nil {
		return err
	}
	path := filepath.Join(dir, MetaFile)
	m, err := readMeta(path)
	if err != nil {
		return err
	}
	m.Server, m.Servers = list[0], list[1:]
	return writeFile(path, m.encode())
}

// failover finds a reachable node after the SIP link was lost: the API
// call moves to the next address if the node in use is gone, and the node
// that answers says where its SIP listener is. A new SIP address gets a
// new link and a registration there; the same one is left to the caller's
// next refresh. It reports whether it registered.
func (m *messenger) failover(ctx context.Context, onMessage func(*sip.Request) (int, string)) (bool, error) {
	var me api.Me
	if err := m.p.c.call(ctx, "GET", api.PathMe, nil, &me); err != nil {
		return false, err
	}
	if me.SIP == "" || me.SIP == m.sipAddr {
		return false, nil
	}
	m.p.log.Info("moving to another node", "sip", me.SIP)
	m.sipAddr = me.SIP
	if err := m.relink(ctx, onMessage); err != nil {
		return false, err
	}
	return true, nil
}

// moveNode is listen's failover after a failed refresh: on another node,
// presence is published again (the refresh's subscriptions follow).
func (m *messenger) moveNode(ctx context.Context, onMessage func(*sip.Request) (int, string)) bool {
	moved, err := m.failover(ctx, onMessage)
	if err != nil {
		m.p.log.Debug("no other node reachable", "err", err)
	}
	if !moved {
		return false
	}
	if _, err := m.watch.publish(ctx); err != nil {
		m.p.log.Debug("presence not published on the new node", "err", err)
	}
	return true
}

// lost reports whether the link's connection, seen open before, has left
// sipgo's pool: its reader ended because the node closed it or died. It
// is a local look, cheap enough for every second, and finds a dead node
// long before the next registration refresh would. An address that never
// matches a pool entry (a host name, pooled by IP) is never reported
// lost; the refresh still finds it.
func (l *sipLink) lost() bool {
	_, err := l.ua.TransportLayer().GetConnection("tls", l.addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err == nil {
		l.seen = true
		return false
	}
	return l.seen
}
