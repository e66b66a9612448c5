package relay

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batcher reads and writes many datagrams per system call: recvmmsg(2)
// and sendmmsg(2) on Linux, one datagram per call elsewhere. ipv4 and
// ipv6 PacketConns both satisfy it (their Message is the same type).
// Their calls go through the runtime's poller, so the socket's deadlines
// apply and Close wakes a blocked call.
type batcher interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func newBatcher(c *net.UDPConn) batcher {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil && len(a.IP) == net.IPv6len {
		return udpBatcher{ipv6.NewPacketConn(c), c}
	}
	return udpBatcher{ipv4.NewPacketConn(c), c}
}

// udpBatcher reads and writes a batch of one datagram through the standard
// library's recvmsg and sendto, which cost less than the bookkeeping of
// recvmmsg and sendmmsg for one: a relayed socket carrying one call sees
// its datagrams one at a time.
type udpBatcher struct {
	batcher
	c *net.UDPConn
}

func (u udpBatcher) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	if len(ms) != 1 || flags != 0 || len(ms[0].Buffers) != 1 {
		return u.batcher.ReadBatch(ms, flags)
	}
	n, _, fl, ap, err := u.c.ReadMsgUDPAddrPort(ms[0].Buffers[0], nil)
	if err != nil {
		return 0, err
	}
	ms[0].N, ms[0].Flags, ms[0].Addr = n, fl, net.UDPAddrFromAddrPort(ap)
	return 1, nil
}

func (u udpBatcher) WriteBatch(ms []ipv4.Message, flags int) (int, error) {
	if len(ms) != 1 || flags != 0 || len(ms[0].Buffers) != 1 {
		return u.batcher.WriteBatch(ms, flags)
	}
	a, ok := ms[0].Addr.(*net.UDPAddr)
	if !ok {
		return u.batcher.WriteBatch(ms, flags)
	}
	if _, err := u.c.WriteToUDP(ms[0].Buffers[0], a); err != nil {
		return 0, err
	}
	return 1, nil
}

// batchReader hands out the datagrams of one socket one at a time, reading
// them a batch per system call. Each buffer keeps head bytes free in front
// of the datagram and tail bytes behind it, so that a ChannelData header
// (and its padding) can be written around the payload without a copy. One
// goroutine reads; a message returned stays valid until the next read.
type batchReader struct {
	pc         batcher
	msgs       []ipv4.Message
	bufs       [][]byte
	head, size int
	n, next    int
}

func newBatchReader(pc batcher, batch, head, size, tail int) *batchReader {
	r := &batchReader{pc: pc, msgs: make([]ipv4.Message, batch), bufs: make([][]byte, batch), head: head, size: size}
	block := make([]byte, batch*(head+size+tail))
	for i := range r.msgs {
		r.bufs[i] = block[i*(head+size+tail) : (i+1)*(head+size+tail) : (i+1)*(head+size+tail)]
		r.msgs[i].Buffers = [][]byte{nil}
	}
	return r
}

// read returns the next datagram. When the last batch is used up it calls
// drained first (the caller flushes what it queued while handling that
// batch, so nothing waits behind a blocking read), then reads a batch.
func (r *batchReader) read(drained func()) (*ipv4.Message, error) {
	if r.next >= r.n {
		drained()
		for i := range r.msgs {
			m := &r.msgs[i]
			m.Buffers[0] = r.bufs[i][r.head : r.head+r.size]
			m.N, m.NN, m.Flags, m.Addr = 0, 0, 0, nil
		}
		n, err := r.pc.ReadBatch(r.msgs, 0)
		if n <= 0 {
			r.n, r.next = 0, 0
			if err == nil {
				err = errEmptyBatch
			}
			return nil, err
		}
		r.n, r.next = n, 0
	}
	m := &r.msgs[r.next]
	r.next++
	return m, nil
}

// frame is the whole buffer of the message last returned, headroom
// included.
func (r *batchReader) frame() []byte { return r.bufs[r.next-1] }

// truncated reports a datagram longer than the buffer (MSG_TRUNC).
func truncated(m *ipv4.Message) bool { return m.Flags&syscall.MSG_TRUNC != 0 }

var errEmptyBatch = errors.New("relay: empty batch read")

// writeAll sends ms with as few system calls as the kernel allows. A
// datagram the kernel refuses is dropped, as a datagram lost on the way
// would be, and the rest still go; the first error is returned with the
// number dropped. It stops early on a closed socket.
func writeAll(pc batcher, ms []ipv4.Message) (dropped int, first error) {
	for len(ms) > 0 {
		n, err := pc.WriteBatch(ms, 0)
		if n > 0 {
			ms = ms[n:]
			continue
		}
		if err == nil { // no progress and no error: do not spin
			err = errEmptyBatch
		}
		if first == nil {
			first = err
		}
		if errors.Is(err, net.ErrClosed) {
			return dropped + len(ms), first
		}
		dropped++
		ms = ms[1:]
	}
	return dropped, first
}
