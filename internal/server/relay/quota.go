package relay

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ErrQuota is a refused allocation: the user holds the most allowed.
var ErrQuota = errors.New("relay: allocation quota reached")

// quotas count each user's allocations and hold the token buckets. A user's
// entry lives while it has allocations, so the table is bounded by them.
type quotas struct {
	maxAllocs int
	allocRate int
	userRate  int

	mu    sync.Mutex
	users map[string]*userQuota
	live  int

	dropped atomic.Uint64
	refused atomic.Uint64
	total   atomic.Uint64 // allocations made since start
}

type userQuota struct {
	allocs  int
	limiter *bucket // nil: no per-user limit
}

func newQuotas(maxAllocs, allocRate, userRate int) *quotas {
	return &quotas{maxAllocs: maxAllocs, allocRate: allocRate, userRate: userRate, users: map[string]*userQuota{}}
}

// admit is pion/turn's QuotaHandler: it answers 486 (Allocation Quota
// Reached, RFC 8656 §7.2 step 7) early; take enforces the cap for certain.
func (q *quotas) admit(user, _ string, _ net.Addr) bool {
	if q.maxAllocs <= 0 {
		return true
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if u := q.users[user]; u != nil && u.allocs >= q.maxAllocs {
		q.refused.Add(1)
		return false
	}
	return true
}

// take counts one allocation of user and returns its lease on the buckets.
func (q *quotas) take(user string) (*lease, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.users[user]
	if u == nil {
		u = &userQuota{}
		if q.userRate > 0 {
			u.limiter = newBucket(q.userRate, burst(q.userRate))
		}
		q.users[user] = u
	}
	if q.maxAllocs > 0 && u.allocs >= q.maxAllocs {
		q.refused.Add(1)
		return nil, ErrQuota
	}
	u.allocs++
	q.live++
	q.total.Add(1)
	l := &lease{q: q, user: user, u: u}
	if q.allocRate > 0 {
		l.own = newBucket(q.allocRate, burst(q.allocRate))
	}
	return l, nil
}

// burst lets a bucket take one second of its rate at once, and at least
// one full-size datagram.
func burst(r int) int { return max(r, 1600) }

func (q *quotas) stats() Stats {
	q.mu.Lock()
	live := q.live
	q.mu.Unlock()
	return Stats{Allocations: live, DroppedBytes: q.dropped.Load(), Refused: q.refused.Load(), Allocated: q.total.Load()}
}

// lease is one allocation's share of the quotas.
type lease struct {
	q    *quotas
	user string
	u    *userQuota
	own  *bucket
}

// allow takes n bytes from the allocation's bucket and the user's; a
// datagram refused by the user's bucket gives back what it took from the
// allocation's.
func (l *lease) allow(n int) bool {
	now := int64(time.Since(epoch))
	if l.own == nil || l.own.allow(now, n) {
		if l.u.limiter == nil || l.u.limiter.allow(now, n) {
			return true
		}
		if l.own != nil {
			l.own.giveBack(n)
		}
	}
	l.q.dropped.Add(uint64(n))
	return false
}

func (l *lease) release() {
	l.q.mu.Lock()
	defer l.q.mu.Unlock()
	l.u.allocs--
	l.q.live--
	if l.u.allocs == 0 && l.q.users[l.user] == l.u {
		delete(l.q.users, l.user)
	}
}
