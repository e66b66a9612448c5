package relay

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// gatedBatcher holds its first WriteBatch until released, so a test can
// make senders arrive while a flush is under way.
type gatedBatcher struct {
	batcher
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int32
}

func (g *gatedBatcher) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if g.calls.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	return g.batcher.WriteBatch(ms, flags)
}

func msgTo(to net.Addr, payload []byte) ipv4.Message {
	return ipv4.Message{Buffers: [][]byte{payload}, Addr: to}
}

// TestSendQueueGathers: senders arriving during a flush are queued (their
// buffers copied, so they may reuse them at once) and sent by the flushing
// goroutine in one call, in order.
func TestSendQueueGathers(t *testing.T) {
	r, s := udpPair(t)
	g := &gatedBatcher{batcher: newBatcher(s), entered: make(chan struct{}), release: make(chan struct{})}
	q := newSendQueue(g, 8, 64, func(int, error) {})
	done := make(chan struct{})
	go func() {
		q.send([]ipv4.Message{msgTo(r.LocalAddr(), []byte("first"))})
		close(done)
	}()
	<-g.entered
	for i := range 5 {
		buf := fmt.Appendf(nil, "queued %d", i)
		q.send([]ipv4.Message{msgTo(r.LocalAddr(), buf)})
		copy(buf, "XXXXXXXX") // the caller reuses its buffer
	}
	close(g.release)
	<-done
	if g.calls.Load() != 2 {
		t.Fatalf("%d sendmmsg calls, want 2 (the first, then the five queued together)", g.calls.Load())
	}
	r.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	for _, want := range []string{"first", "queued 0", "queued 1", "queued 2", "queued 3", "queued 4"} {
		n, _, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != want {
			t.Fatalf("got %q, want %q", buf[:n], want)
		}
	}
}

// TestSendQueueFull: a sender finding the queue full waits for room
// rather than drop or overtake.
func TestSendQueueFull(t *testing.T) {
	r, s := udpPair(t)
	g := &gatedBatcher{batcher: newBatcher(s), entered: make(chan struct{}), release: make(chan struct{})}
	q := newSendQueue(g, 2, 64, func(int, error) {})
	go q.send([]ipv4.Message{msgTo(r.LocalAddr(), []byte("first"))})
	<-g.entered
	q.send([]ipv4.Message{msgTo(r.LocalAddr(), []byte("q1")), msgTo(r.LocalAddr(), []byte("q2"))})
	sent := make(chan struct{})
	go func() {
		q.send([]ipv4.Message{msgTo(r.LocalAddr(), []byte("waited"))})
		close(sent)
	}()
	select {
	case <-sent:
		t.Fatal("a send into a full queue returned while the flush was held")
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	<-sent
	r.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	for _, want := range []string{"first", "q1", "q2", "waited"} {
		n, _, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != want {
			t.Fatalf("got %q, want %q", buf[:n], want)
		}
	}
}

// TestSendQueueConcurrent: many senders at once; every datagram arrives
// and each sender's come in the order it sent them.
func TestSendQueueConcurrent(t *testing.T) {
	r, s := udpPair(t)
	r.SetReadBuffer(4 << 20)
	q := newSendQueue(newBatcher(s), 16, 64, func(_ int, err error) {
		if err != nil {
			t.Error(err)
		}
	})
	const senders, each = 8, 200
	var wg sync.WaitGroup
	next := make([]uint32, senders)
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		r.SetReadDeadline(time.Now().Add(10 * time.Second))
		for range senders * each {
			n, _, err := r.ReadFrom(buf)
			if err != nil {
				recvDone <- err
				return
			}
			if n != 8 {
				recvDone <- fmt.Errorf("datagram of %d bytes", n)
				return
			}
			id, seq := binary.BigEndian.Uint32(buf), binary.BigEndian.Uint32(buf[4:])
			if seq != next[id] {
				recvDone <- fmt.Errorf("sender %d: datagram %d, want %d", id, seq, next[id])
				return
			}
			next[id]++
		}
		recvDone <- nil
	}()
	for id := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 8)
			for seq := range each {
				binary.BigEndian.PutUint32(buf, uint32(id))
				binary.BigEndian.PutUint32(buf[4:], uint32(seq))
				q.send([]ipv4.Message{msgTo(r.LocalAddr(), buf)})
				if seq%50 == 49 {
					time.Sleep(time.Millisecond) // let the receiver keep up
				}
			}
		}()
	}
	wg.Wait()
	if err := <-recvDone; err != nil {
		t.Fatal(err)
	}
}
