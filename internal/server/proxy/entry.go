package proxy

import (
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Defaults for requests without a device certificate: standard phones
// and anyone else. A phone needs a handful a minute.
const (
	DefaultUnauthRate  = 20
	DefaultUnauthBurst = 100
)

// entry wraps every request handler: a request from a connection without
// a device certificate (unauthenticated, or a standard phone's digest
// attempt) spends a token of its source address, so no source can make
// the node answer, look up credentials or hash without bound.
func (p *Proxy) entry(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if p.ln == nil || p.ln.peer(req.Source()) == nil {
			if wait := p.unauth.take(sourceOf(req.Source()), time.Now()); wait > 0 {
				if req.Method != sip.ACK {
					p.respond(tx, req, 503, "Service Unavailable: rate limit", retryAfter(wait)...)
				}
				return
			}
		}
		h(req, tx)
	}
}

// sweepUnauth forgets sources whose bucket is full again.
func (p *Proxy) sweepUnauth(now time.Time) {
	l := p.unauth
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, b := range l.b {
		if now.Sub(b.last) > full {
			delete(l.b, k)
		}
	}
}
