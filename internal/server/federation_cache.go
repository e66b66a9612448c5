package server

import (
	"sync"
	"time"

	"github.com/phonex/phonex/internal/api"
)

// bundleCache keeps the last key answer a peer gave for one local account
// about one remote account, without its one-time keys (handed out once),
// to serve while the peer cannot be reached. It is kept per pair: the peer
// decided that this local account may see those keys, not any other.
type bundleCache struct {
	mu sync.Mutex
	m  map[[2]string]cachedBundles
}

type cachedBundles struct {
	at time.Time
	bs []api.Bundle // with CA set
}

const (
	bundleCacheTTL = 7 * 24 * time.Hour
	bundleCacheMax = 1 << 14
)

func (c *bundleCache) put(requester, remote string, bs []api.Bundle, now time.Time) {
	kept := make([]api.Bundle, 0, len(bs))
	for _, b := range bs {
		b.OneTime, b.PQOneTime = nil, nil
		kept = append(kept, b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= bundleCacheMax {
		c.m = map[[2]string]cachedBundles{}
	}
	c.m[[2]string{requester, remote}] = cachedBundles{at: now, bs: kept}
}

func (c *bundleCache) get(requester, remote string, now time.Time) ([]api.Bundle, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[[2]string{requester, remote}]
	if !ok || now.Sub(e.at) > bundleCacheTTL {
		return nil, false
	}
	return append([]api.Bundle(nil), e.bs...), true
}
