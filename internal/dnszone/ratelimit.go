package dnszone

import (
	"net/netip"
	"sync"
	"time"
)

// Response rate limiting for UDP, where source addresses can be forged:
// signed answers are many times larger than the queries, which makes an
// open authoritative server an amplifier. Each source network (IPv4 /24,
// IPv6 /56) gets a token bucket of answers per second; beyond it every
// second answer is replaced by an empty truncated one (TC, so a real client
// retries over TCP, which cannot be forged) and the others are dropped, as
// BIND's and Knot's RRL "slip" does. TCP is not limited here.

const (
	maxLimited  = 1 << 16 // source networks tracked at once
	idleLimited = 10 * time.Second
)

type limiter struct {
	rate, burst float64
	mu          sync.Mutex
	m           map[netip.Prefix]*bucket
	slip        uint64
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64) *limiter {
	return &limiter{rate: rate, burst: 2 * rate, m: map[netip.Prefix]*bucket{}}
}

func sourceNet(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 24
	if a.Is6() {
		bits = 56
	}
	p, _ := a.Prefix(bits)
	return p
}

// allow reports whether a reply may go to a; if not, slip tells whether to
// send an empty truncated reply instead of nothing.
func (l *limiter) allow(a netip.Addr, now time.Time) (ok, slip bool) {
	p := sourceNet(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[p]
	if b == nil {
		if len(l.m) >= maxLimited {
			for k, v := range l.m {
				if now.Sub(v.last) > idleLimited {
					delete(l.m, k)
				}
			}
			if len(l.m) >= maxLimited {
				// Too many networks to track: answer rather than refuse
				// everyone new.
				return true, false
			}
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[p] = b
	}
	// A reader that read its clock before another took the lock is not
	// charged for the difference, and last never moves back.
	if now.After(b.last) {
		b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, false
	}
	l.slip++
	return false, l.slip%2 == 0
}
