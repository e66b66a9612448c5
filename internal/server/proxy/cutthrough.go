package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/store"
)

// cutThrough hands a MESSAGE straight to every target device that is
// registered here and idle, before anything is stored, and returns the
// devices that took it (a 2xx) or refused it for good; the caller stores
// the copies of the others and answers the sender only then.
//
// A device gets as long to answer as on any delivery (send); one that
// takes longer gets a stored copy, as it would have on the stored path,
// so a slow device sees the same retries either way.
//
// The sender's 200 so still means the message is safe: either in the
// store or already taken by each device, which answers only after keeping
// it. A node that dies in between never answered, and the sender's queue
// sends again; devices drop the repeat. Storing and forgetting a copy is
// most of what a relayed MESSAGE costs the node (README, "Messaging
// relay"), so an online device is spared both.
//
// Order per sender holds because the path is taken only when nothing is
// waiting for the device: no delivery run or cut-through in progress (the
// claim below makes this one the run), no backoff after a failure, and no
// stored copy, read after the MESSAGE arrived. A copy stored earlier was
// committed before its sender got the 200, so before that sender's next
// MESSAGE, on this node or another. The routing facts the decision used
// must also still be current, as the storing transaction would check.
func (p *Proxy) cutThrough(ctx context.Context, rt *route, from *Identity, ctype string, body []byte, targets []store.Target) map[int64]bool {
	if len(targets) == 0 || rt.gen == 0 {
		return nil
	}
	claimed := make([]binding, 0, len(targets))
	now := time.Now()
	p.mu.Lock()
	for _, t := range targets {
		b := p.bindings[t.DeviceID]
		if b == nil || b.running || b.pending || b.failures > 0 || now.After(b.expires) || now.Before(b.retryAt) {
			break
		}
		claimed = append(claimed, *b)
	}
	if len(claimed) < len(targets) {
		p.mu.Unlock()
		return nil
	}
	for _, t := range targets {
		p.bindings[t.DeviceID].running = true
	}
	p.mu.Unlock()
	failed := make([]bool, len(targets))
	defer func() {
		for i, t := range targets {
			p.release(t.DeviceID, failed[i])
		}
	}()
	if !p.nothingWaiting(ctx, rt, targets) {
		return nil
	}
	created := time.Now()
	d := store.Delivery{Message: store.Message{Sender: from.Account, SenderDevice: from.Device, Recipient: rt.rcpt.Name,
		ContentType: ctype, Body: body, Created: created}}
	codes := make([]int, len(targets))
	send := func(i int) {
		code, err := p.send(claimed[i], d)
		if err != nil {
			p.log.Debug("cut-through failed; stored instead", "err", err)
			code = 0
		}
		codes[i] = code
	}
	if len(targets) == 1 {
		send(0)
	} else {
		// Each device answers in its own time; the sender waits for the
		// slowest, so they are asked together.
		var wg sync.WaitGroup
		for i := range targets {
			wg.Add(1)
			go func() { defer wg.Done(); send(i) }()
		}
		wg.Wait()
	}
	delivered := make(map[int64]bool, len(targets))
	for i, t := range targets {
		switch code := codes[i]; {
		case !final(code):
			// Stored by the caller; the device's next run waits its backoff,
			// as after a stored copy it deferred.
			failed[i] = true
		case code < 300:
			p.cfg.Metrics.Delivered(created)
			delivered[t.DeviceID] = true
		default:
			p.log.Warn("device refused a message for good; dropped", "code", code)
			delivered[t.DeviceID] = true
		}
	}
	return delivered
}

// nothingWaiting reports whether the routing facts are current and no
// target device has a stored copy waiting (cutThrough).
func (p *Proxy) nothingWaiting(ctx context.Context, rt *route, targets []store.Target) bool {
	ids := make([]int64, len(targets))
	for i, t := range targets {
		ids[i] = t.DeviceID
	}
	gen, waiting, err := p.cfg.Store.Waiting(ctx, ids)
	return err == nil && gen == rt.gen && !waiting
}
