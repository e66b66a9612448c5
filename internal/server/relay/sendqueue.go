package relay

import (
	"sync"

	"golang.org/x/net/ipv4"
)

// sendQueue gathers the datagrams many goroutines send on one socket into
// shared sendmmsg calls. A sender finding no flush under way sends at once,
// its own datagrams without a copy, so an idle relay adds no delay; a
// sender arriving while a flush is under way leaves copies of its
// datagrams and returns, and the flushing goroutine sends them next, in
// the order they came. When the queue is full a sender waits for room (as
// a blocking socket write would), so nothing is reordered or dropped here.
type sendQueue struct {
	pc         batcher
	done       func(dropped int, err error)
	slots, max int // datagrams queued at most, bytes per datagram

	mu       sync.Mutex
	room     *sync.Cond // on mu: the queue was swapped out or the flush ended
	flushing bool
	cur      *sendBuf // filled under mu
	spare    *sendBuf // sent by the flushing goroutine, outside mu
}

type sendBuf struct {
	msgs []ipv4.Message
	bufs [][]byte
	n    int
}

func newSendBuf(n, size int) *sendBuf {
	b := &sendBuf{msgs: make([]ipv4.Message, n), bufs: make([][]byte, n)}
	block := make([]byte, n*size)
	for i := range b.msgs {
		b.bufs[i] = block[i*size : (i+1)*size : (i+1)*size]
		b.msgs[i].Buffers = [][]byte{nil}
	}
	return b
}

// newSendQueue queues up to n datagrams of at most size bytes.
func newSendQueue(pc batcher, n, size int, done func(int, error)) *sendQueue {
	q := &sendQueue{pc: pc, done: done, slots: n, max: size, cur: newSendBuf(n, size), spare: newSendBuf(n, size)}
	q.room = sync.NewCond(&q.mu)
	return q
}

// send sends ms (each a single buffer) or queues copies of them; ms may be
// reused once it returns.
func (q *sendQueue) send(ms []ipv4.Message) {
	fits := q.fits(ms)
	q.mu.Lock()
	for q.flushing && (!fits || q.cur.n+len(ms) > q.slots) {
		q.room.Wait()
	}
	if q.flushing {
		b := q.cur
		for _, m := range ms {
			o := &b.msgs[b.n]
			o.Buffers[0] = b.bufs[b.n][:copy(b.bufs[b.n][:cap(b.bufs[b.n])], m.Buffers[0])]
			o.Addr = m.Addr
			b.n++
		}
		q.mu.Unlock()
		return
	}
	q.flushing = true
	q.mu.Unlock()
	q.done(writeAll(q.pc, ms))
	q.mu.Lock()
	for q.cur.n > 0 {
		b := q.cur
		q.cur, q.spare = q.spare, b
		q.room.Broadcast()
		q.mu.Unlock()
		q.done(writeAll(q.pc, b.msgs[:b.n]))
		for i := range b.n {
			b.msgs[i].Addr = nil
		}
		b.n = 0
		q.mu.Lock()
	}
	q.flushing = false
	q.room.Broadcast()
	q.mu.Unlock()
}

func (q *sendQueue) fits(ms []ipv4.Message) bool {
	if len(ms) > q.slots {
		return false
	}
	for _, m := range ms {
		if len(m.Buffers[0]) > q.max {
			return false
		}
	}
	return true
}
