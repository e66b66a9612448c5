package proxy

import (
	"context"
	"sync"

	"github.com/phonex/phonex/internal/store"
)

// route is what the proxy decides a MESSAGE's fate from: the recipient
// account, both contact lists, and the active devices of both accounts.
type route struct {
	gen         int64         // the store's routing generation read before the facts
	rcpt        store.Account // ID, Name and Status only: no secrets are kept
	whitelisted bool          // the recipient lists the sender
	listed      bool          // the sender lists the recipient
	rcptDevs    []store.DeviceRef
	senderDevs  []store.DeviceRef // nil when sender and recipient are one account
	cached      bool              // served from the cache, not read from the store for this message
}

// routes caches routes by sender account and recipient. It is never the
// last word: a message routed from the cache is stored only if the store's
// routing generation is still the one the facts were read under, checked
// in the transaction that stores it (store.Message.RouteGeneration), and a
// refusal decided from the cache is decided again from the store. So a
// removed contact, a revoked device or a disabled account, changed by this
// node or by an admin command in another process, takes effect for the
// next message as without the cache.
type routes struct {
	mu  sync.Mutex
	gen int64 // the newest generation seen; older entries are not used
	m   map[routeKey]*route
}

type routeKey struct {
	sender    int64
	recipient string
}

// maxRoutes bounds the cache; past it, it starts again empty.
const maxRoutes = 1 << 16

// get returns the cached route, or reads it from the store.
func (rs *routes) get(ctx context.Context, st store.Store, from *Identity, recipient string) (*route, error) {
	k := routeKey{from.AccountID, recipient}
	rs.mu.Lock()
	r := rs.m[k]
	ok := r != nil && r.gen == rs.gen
	rs.mu.Unlock()
	if ok {
		c := *r
		c.cached = true
		return &c, nil
	}
	return rs.read(ctx, st, from, recipient)
}

// read reads a route from the store and caches it. The generation is read
// first: facts read after it are at least as new, so a change made
// between the two reads can only make the route look stale, never fresh.
func (rs *routes) read(ctx context.Context, st store.Store, from *Identity, recipient string) (*route, error) {
	gen, err := st.RoutingGeneration(ctx)
	if err != nil {
		return nil, err
	}
	a, err := st.Account(ctx, recipient)
	if err != nil {
		return nil, err
	}
	r := &route{gen: gen, rcpt: store.Account{ID: a.ID, Name: a.Name, Status: a.Status}}
	if a.Status == store.StatusActive {
		if a.Name != from.Account {
			if r.whitelisted, err = st.HasContact(ctx, a.Name, from.Account); err != nil {
				return nil, err
			}
			if r.listed, err = st.HasContact(ctx, from.Account, a.Name); err != nil {
				return nil, err
			}
		}
		if r.rcptDevs, err = st.ActiveDevices(ctx, a.ID); err != nil {
			return nil, err
		}
		if a.ID != from.AccountID {
			if r.senderDevs, err = st.ActiveDevices(ctx, from.AccountID); err != nil {
				return nil, err
			}
		}
	}
	k := routeKey{from.AccountID, recipient}
	rs.mu.Lock()
	if gen >= rs.gen {
		if gen > rs.gen || len(rs.m) >= maxRoutes {
			// Entries of older generations are never used again.
			clear(rs.m)
		}
		if rs.m == nil {
			rs.m = map[routeKey]*route{}
		}
		rs.gen = gen
		rs.m[k] = r
	}
	rs.mu.Unlock()
	c := *r
	return &c, nil
}

// forget drops every cached route (tests).
func (rs *routes) forget() {
	rs.mu.Lock()
	clear(rs.m)
	rs.mu.Unlock()
}
