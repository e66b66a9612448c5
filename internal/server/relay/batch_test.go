package relay

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

func udpPair(t *testing.T) (recv, send *net.UDPConn) {
	t.Helper()
	r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); s.Close() })
	return r, s
}

// TestBatchReaderOrderAndPartialBatches sends more datagrams than a batch
// holds, and a count that leaves the last batch partial: they come out in
// order, with the headroom in front, and drained runs once per batch
// boundary, before each read that may block.
func TestBatchReaderOrderAndPartialBatches(t *testing.T) {
	// Loopback queues all 21 before the first read: 8 + 8 + 5; batches of
	// one take the single-datagram path.
	for _, tc := range []struct{ batch, drains int }{{8, 3}, {1, 21}} {
		t.Run(fmt.Sprint(tc.batch), func(t *testing.T) { testBatchReaderOrder(t, tc.batch, tc.drains) })
	}
}

func testBatchReaderOrder(t *testing.T, batch, wantDrains int) {
	r, s := udpPair(t)
	const total = 21
	for i := range total {
		if _, err := s.WriteTo(fmt.Appendf(nil, "datagram %02d", i), r.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	br := newBatchReader(newBatcher(r), batch, chanHeader, 64, channelPadding)
	drains := 0
	r.SetReadDeadline(time.Now().Add(3 * time.Second))
	for i := range total {
		m, err := br.read(func() { drains++ })
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if got, want := string(m.Buffers[0][:m.N]), fmt.Sprintf("datagram %02d", i); got != want {
			t.Fatalf("read %d: %q, want %q", i, got, want)
		}
		if m.Addr.String() != s.LocalAddr().String() {
			t.Fatalf("from %s, want %s", m.Addr, s.LocalAddr())
		}
		if f := br.frame(); len(f) != chanHeader+64+channelPadding || !bytes.Equal(f[chanHeader:chanHeader+m.N], m.Buffers[0][:m.N]) {
			t.Fatalf("frame of %d bytes does not hold the datagram after the headroom", len(f))
		}
	}
	if drains != wantDrains {
		t.Fatalf("drained %d times for 21 datagrams in batches of %d", drains, batch)
	}
}

// TestBatchReaderDeadline: a read with nothing queued ends at the socket's
// deadline with a timeout, after draining what the caller queued.
func TestBatchReaderDeadline(t *testing.T) {
	r, _ := udpPair(t)
	br := newBatchReader(newBatcher(r), 4, 0, 64, 0)
	r.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	drained := false
	start := time.Now()
	_, err := br.read(func() { drained = true })
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	if !drained {
		t.Fatal("read blocked without draining first")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("deadline of 100 ms took %v", d)
	}
}

// TestBatchReaderCloseWhileBlocked: Close wakes a reader blocked in the
// batch read with net.ErrClosed.
func TestBatchReaderCloseWhileBlocked(t *testing.T) {
	r, _ := udpPair(t)
	br := newBatchReader(newBatcher(r), 4, 0, 64, 0)
	done := make(chan error, 1)
	go func() {
		_, err := br.read(func() {})
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read after Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not wake the blocked read")
	}
}

// TestBatchReaderTruncated: a datagram longer than the buffer is flagged.
func TestBatchReaderTruncated(t *testing.T) {
	for _, batch := range []int{4, 1} {
		t.Run(fmt.Sprint(batch), func(t *testing.T) { testBatchReaderTruncated(t, batch) })
	}
}

func testBatchReaderTruncated(t *testing.T, batch int) {
	r, s := udpPair(t)
	s.WriteTo(make([]byte, 100), r.LocalAddr())
	s.WriteTo(make([]byte, 10), r.LocalAddr())
	br := newBatchReader(newBatcher(r), batch, 0, 64, 0)
	r.SetReadDeadline(time.Now().Add(3 * time.Second))
	for _, want := range []bool{true, false} {
		m, err := br.read(func() {})
		if err != nil {
			t.Fatal(err)
		}
		if truncated(m) != want {
			t.Fatalf("datagram of %d bytes read: truncated %v, want %v", m.N, truncated(m), want)
		}
	}
}

// TestWriteAll: a batch goes out in order; a datagram the kernel refuses
// (here: an IPv6 destination on an IPv4 socket) is dropped and reported,
// and the ones after it still go; a closed socket drops the rest.
func TestWriteAll(t *testing.T) {
	r, s := udpPair(t)
	pc := newBatcher(s)
	var ms []ipv4.Message
	for i := range 5 {
		to := r.LocalAddr()
		if i == 2 {
			to = &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 9}
		}
		ms = append(ms, ipv4.Message{Buffers: [][]byte{fmt.Appendf(nil, "m%d", i)}, Addr: to})
	}
	dropped, err := writeAll(pc, ms)
	if dropped != 1 || err == nil {
		t.Fatalf("writeAll: %d dropped, err %v; want 1 and the error", dropped, err)
	}
	r.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	for _, want := range []string{"m0", "m1", "m3", "m4"} {
		n, _, err := r.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if string(buf[:n]) != want {
			t.Fatalf("got %q, want %q", buf[:n], want)
		}
	}
	// One datagram alone takes the single-datagram path, errors alike.
	if dropped, err := writeAll(pc, ms[2:3]); dropped != 1 || err == nil {
		t.Fatalf("writeAll of one refused datagram: %d dropped, err %v", dropped, err)
	}
	if dropped, err := writeAll(pc, ms[4:5]); dropped != 0 || err != nil {
		t.Fatalf("writeAll of one datagram: %d dropped, err %v", dropped, err)
	}
	if n, _, err := r.ReadFrom(buf); err != nil || string(buf[:n]) != "m4" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
	s.Close()
	dropped, err = writeAll(pc, ms[:2])
	if dropped != 2 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("writeAll on a closed socket: %d dropped, err %v", dropped, err)
	}
}

// TestBatchReaderSenders: datagrams read alone report their own senders
// when senders alternate.
func TestBatchReaderSenders(t *testing.T) {
	r, s1 := udpPair(t)
	_, s2 := udpPair(t)
	senders := []*net.UDPConn{s1, s1, s2, s1, s2, s2}
	for i, s := range senders {
		if _, err := s.WriteTo([]byte{byte(i)}, r.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	br := newBatchReader(newBatcher(r), 1, 0, 64, 0)
	r.SetReadDeadline(time.Now().Add(3 * time.Second))
	for i, s := range senders {
		m, err := br.read(func() {})
		if err != nil {
			t.Fatal(err)
		}
		if m.Buffers[0][0] != byte(i) || m.Addr.String() != s.LocalAddr().String() {
			t.Fatalf("datagram %d from %s, want %d from %s", m.Buffers[0][0], m.Addr, i, s.LocalAddr())
		}
	}
}
