package federation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// Send forwards one queued message to its peer and returns the peer's
// final answer (a SIP status code and reason), or an error when there was
// none.
type Send func(ctx context.Context, peer store.Peer, o store.Outbound) (int, string, error)

// Queue delivers the messages queued for peers, one domain at a time in
// queue order. A message is forgotten only once the peer answered it for
// good: 2xx (committed, or already committed before), or a refusal that
// cannot change (the peer's user does not list the sender, no such user).
// Anything else (no answer, a transient refusal) keeps it and retries the
// domain after a backoff, so a peer that is down gets the messages when it
// returns, in order.
//
// Nodes sharing one store take turns by a lease per domain
// (store.LeaseOutbound): one node sends a domain's queue at a time, so its
// order holds, and another takes over once a node stops renewing.
type Queue struct {
	St   store.Store
	Send Send
	Log  *slog.Logger

	// Holder is this node's name in leases: distinct per node, and the
	// same after a restart, so a restarted node resumes its own lease.
	// Empty: a random one (a restart then waits for the old lease).
	Holder  string
	mu      sync.Mutex
	ctx     context.Context
	running map[string]bool
	pending map[string]bool
	timers  map[string]*time.Timer
	fails   map[string]int
}

// Backoff of a peer that did not take a message.
const (
	firstRetry = 500 * time.Millisecond
	maxRetry   = 30 * time.Second
	page       = 32
	// leaseFor outlasts the longest backoff, so the holder renews its
	// lease at its next attempt.
	leaseFor = 2 * maxRetry
)

// Start resumes the domains with messages queued before a restart.
func (q *Queue) Start(ctx context.Context) {
	q.mu.Lock()
	q.ctx = ctx
	if q.Holder == "" {
		b := make([]byte, 12)
		rand.Read(b)
		q.Holder = hex.EncodeToString(b)
	}
	q.mu.Unlock()
	ds, err := q.St.OutboundDomains(ctx)
	if err != nil {
		q.Log.Error("read the federation queue", "err", err)
	}
	for _, d := range ds {
		q.Kick(d)
	}
	go func() {
		<-ctx.Done()
		q.mu.Lock()
		for _, t := range q.timers {
			t.Stop()
		}
		q.mu.Unlock()
	}()
}

// Kick starts delivery to domain unless it runs or waits for its backoff.
func (q *Queue) Kick(domain string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ctx == nil || q.ctx.Err() != nil {
		return
	}
	q.init()
	if q.running[domain] || q.timers[domain] != nil {
		q.pending[domain] = true
		return
	}
	q.running[domain] = true
	go q.run(domain)
}

// init makes the maps; q.mu must be held.
func (q *Queue) init() {
	if q.running == nil {
		q.running, q.pending, q.timers, q.fails = map[string]bool{}, map[string]bool{}, map[string]*time.Timer{}, map[string]int{}
	}
}

// Retry drops a domain's backoff and delivers at once (a peer came back).
func (q *Queue) Retry(domain string) {
	q.mu.Lock()
	if t := q.timers[domain]; t != nil {
		t.Stop()
		delete(q.timers, domain)
	}
	q.mu.Unlock()
	q.Kick(domain)
}

// Direct forwards the queued message id at once, when nothing of its
// domain is being sent or waiting for a backoff and no older message of it
// is queued, so the sender can learn the peer's answer as it would within
// one cluster. It returns the peer's final answer, the message then
// forgotten; tried is false when it was not tried or got no final answer,
// and the queue then keeps it and retries as for any other.
func (q *Queue) Direct(ctx context.Context, domain string, id int64) (code int, reason string, tried bool) {
	q.mu.Lock()
	if q.ctx == nil || q.ctx.Err() != nil {
		q.mu.Unlock()
		return 0, "", false
	}
	q.init()
	if q.running[domain] || q.timers[domain] != nil {
		q.pending[domain] = true
		q.mu.Unlock()
		return 0, "", false
	}
	q.running[domain] = true
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.running[domain] = false
		again := q.pending[domain] || !tried
		q.mu.Unlock()
		if again {
			q.Kick(domain)
		}
	}()
	if ok, err := q.lease(ctx, domain); err != nil || !ok {
		return 0, "", false
	}
	peer, err := q.St.Peer(ctx, domain)
	if err != nil {
		return 0, "", false
	}
	os, err := q.St.OutboundFor(ctx, domain, 1)
	if err != nil || len(os) == 0 || os[0].ID != id {
		return 0, "", false
	}
	code, reason, err = q.Send(ctx, peer, os[0])
	if err != nil || !Final(code) {
		return 0, "", false
	}
	if err := q.St.OutboundDone(ctx, id); err != nil {
		q.Log.Error("forget a forwarded message", "err", err)
	}
	if err := q.St.PeerAttempt(ctx, domain, "", time.Now()); err != nil {
		q.Log.Error("record a federation attempt", "err", err)
	}
	if rest, err := q.St.OutboundFor(ctx, domain, 1); err == nil && len(rest) == 0 {
		q.release(domain)
	}
	return code, reason, true
}

// lease takes or renews this node's lease of domain's queue.
func (q *Queue) lease(ctx context.Context, domain string) (bool, error) {
	now := time.Now()
	ok, err := q.St.LeaseOutbound(ctx, domain, q.Holder, now.Add(leaseFor), now)
	if err != nil {
		q.Log.Error("lease a federation queue", "err", err)
	}
	return ok, err
}

func (q *Queue) run(domain string) {
	ok, elsewhere := q.drain(domain)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.running[domain] = false
	if elsewhere {
		// Another node sends this queue; look again when its lease
		// would have run out.
		q.timers[domain] = time.AfterFunc(leaseFor, func() {
			q.mu.Lock()
			delete(q.timers, domain)
			q.mu.Unlock()
			q.Kick(domain)
		})
		return
	}
	if !ok {
		q.fails[domain]++
		wait := min(firstRetry<<min(q.fails[domain]-1, 10), maxRetry)
		q.timers[domain] = time.AfterFunc(wait, func() {
			q.mu.Lock()
			delete(q.timers, domain)
			q.mu.Unlock()
			q.Kick(domain)
		})
		return
	}
	q.fails[domain] = 0
	if q.pending[domain] {
		q.pending[domain] = false
		q.running[domain] = true
		go q.run(domain)
	}
}

// drain sends the domain's queued messages until none is left (ok) or
// one was not taken (not ok); elsewhere: another node holds the queue.
func (q *Queue) drain(domain string) (ok, elsewhere bool) {
	ctx := q.ctx
	for ctx.Err() == nil {
		q.mu.Lock()
		q.pending[domain] = false
		q.mu.Unlock()
		if held, err := q.lease(ctx, domain); err != nil {
			return false, false
		} else if !held {
			return true, true
		}
		peer, err := q.St.Peer(ctx, domain)
		if errors.Is(err, store.ErrNotFound) {
			// Removed by the operator: its messages wait until it is
			// added again.
			q.release(domain)
			return true, false
		}
		if err != nil {
			q.Log.Error("read a federation peer", "err", err)
			return false, false
		}
		os, err := q.St.OutboundFor(ctx, domain, page)
		if err != nil {
			q.Log.Error("read the federation queue", "err", err)
			return false, false
		}
		if len(os) == 0 {
			q.release(domain)
			return true, false
		}
		for _, o := range os {
			code, _, err := q.Send(ctx, peer, o)
			if err == nil && !Final(code) {
				err = errors.New("peer deferred the message")
			}
			if err != nil {
				q.Log.Debug("forward to peer failed; kept for later", "domain", domain, "err", err)
				if err := q.St.PeerAttempt(ctx, domain, err.Error(), time.Now()); err != nil {
					q.Log.Error("record a federation attempt", "err", err)
				}
				return false, false
			}
			if code >= 300 {
				q.Log.Warn("peer refused a forwarded message for good; dropped", "domain", domain, "code", code)
			}
			if err := q.St.OutboundDone(ctx, o.ID); err != nil {
				// Sent again later; the peer drops it as a repeat.
				q.Log.Error("forget a forwarded message", "err", err)
				return false, false
			}
			if err := q.St.PeerAttempt(ctx, domain, "", time.Now()); err != nil {
				q.Log.Error("record a federation attempt", "err", err)
			}
		}
	}
	return false, false
}

// release ends this node's lease of an emptied queue, so another node
// with new messages for the domain need not wait for it to run out.
func (q *Queue) release(domain string) {
	if err := q.St.ReleaseOutbound(q.ctx, domain, q.Holder); err != nil {
		q.Log.Error("release a federation queue", "err", err)
	}
}

// Final reports whether a peer's answer settles a forwarded message: taken
// (2xx) or refused in a way that time does not change. 408, 480 and 5xx
// but 501 and 513 are the peer's "later" answers (RFC 3261 §21.4.9,
// §21.4.18); a peer that cannot check this node's certificate (its CA not
// yet accepted there) answers 503, so the messages wait for the operator.
func Final(code int) bool {
	switch {
	case code < 200:
		return false
	case code == 408, code == 480:
		return false
	case code >= 500 && code < 600:
		return code == 501 || code == 513
	}
	return true
}
