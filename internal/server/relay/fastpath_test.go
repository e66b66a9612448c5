package relay

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"
)

func (s *Server) boundChannels() int {
	n := 0
	for _, l := range s.udpLns {
		l.mu.RLock()
		n += len(l.bound)
		l.mu.RUnlock()
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// relayedPair allocates for two UDP clients and lets each send one datagram
// to the other's relayed address, after which pion/turn's client has bound
// a channel on both sides (it binds on the first send, RFC 8656 §12).
func relayedPair(t *testing.T, f fixture) (a, b net.PacketConn) {
	t.Helper()
	ua, pa := creds("alpha@example.org", time.Hour)
	ub, pb := creds("bravo@example.org", time.Hour)
	ca, cb := f.client(t, "udp", ua, pa), f.client(t, "udp", ub, pb)
	ra, err := ca.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ra.Close() })
	rb, err := cb.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rb.Close() })
	// Both permissions before the first datagram, or it could reach b's
	// relayed address before b permits a (RFC 8656 §9).
	if err := ca.CreatePermission(rb.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if err := cb.CreatePermission(ra.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := ra.WriteTo([]byte("hello"), rb.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if _, err := rb.WriteTo([]byte("hello"), ra.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	readWithin(t, rb, 3*time.Second)
	readWithin(t, ra, 3*time.Second)
	waitFor(t, "two channel bindings", func() bool { return f.srv.boundChannels() == 2 })
	// The server binds a channel when the ChannelBind request arrives, but
	// a client sends over it only once the answer is back, by Send
	// indication until then (the slow path). Exchange datagrams until
	// both clients use their channels: a round trip all on the fast path.
	deadline := time.Now().Add(5 * time.Second)
	for {
		before := f.srv.Stats().Forwarded
		if _, err := ra.WriteTo([]byte("warm"), rb.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		readWithin(t, rb, 3*time.Second)
		if _, err := rb.WriteTo([]byte("warm"), ra.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		readWithin(t, ra, 3*time.Second)
		if f.srv.Stats().Forwarded-before == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the clients never sent over their channels")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return ra, rb
}

// TestFastPathRelaysChannelData: once the channels are bound, ChannelData
// crosses the relay both ways on the batched path, intact and in order,
// and the channels leave the table with the allocations.
func TestFastPathRelaysChannelData(t *testing.T) {
	f := start(t, nil)
	a, b := relayedPair(t, f)
	before := f.srv.Stats().Forwarded
	const n = 200
	for i := range n {
		for _, c := range []struct{ from, to net.PacketConn }{{a, b}, {b, a}} {
			msg := fmt.Appendf(nil, "srtp %03d from %s", i, c.from.LocalAddr())
			if _, err := c.from.WriteTo(msg, c.to.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			got, from := readWithin(t, c.to, 3*time.Second)
			if !bytes.Equal(got, msg) || from.String() != c.from.LocalAddr().String() {
				t.Fatalf("got %q from %s, want %q from %s", got, from, msg, c.from.LocalAddr())
			}
		}
	}
	// Each datagram passes the relay twice (into a's allocation, out of
	// b's): both legs on the fast path.
	if got := f.srv.Stats().Forwarded - before; got != 4*n {
		t.Fatalf("fast path relayed %d datagrams, want %d", got, 4*n)
	}
	a.Close()
	b.Close()
	waitFor(t, "the channels to go with the allocations", func() bool {
		return f.srv.boundChannels() == 0 && f.srv.Stats().Allocations == 0
	})
}

// TestFastPathBurstKeepsOrder sends a burst faster than the relay reads,
// so that datagrams are read and sent in batches: the relay forwards every
// one on both legs, and what reaches the client comes in order (a client's
// socket buffer, not the relay's, may overflow under a loaded test
// machine).
func TestFastPathBurstKeepsOrder(t *testing.T) {
	f := start(t, nil)
	a, b := relayedPair(t, f)
	before := f.srv.Stats().Forwarded
	const n = 200
	for i := range n {
		msg := make([]byte, 160)
		binary.BigEndian.PutUint32(msg, uint32(i))
		if _, err := a.WriteTo(msg, b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	got, last := 0, -1
	buf := make([]byte, 1600)
	for {
		b.SetReadDeadline(time.Now().Add(3 * time.Second)) // quiet for 3 s: all that crosses has
		m, _, err := b.ReadFrom(buf)
		if err != nil {
			break
		}
		seq := int(binary.BigEndian.Uint32(buf))
		if m != 160 || seq <= last {
			t.Fatalf("datagram %d of %d bytes after %d", seq, m, last)
		}
		last = seq
		got++
	}
	st := f.srv.Stats()
	if st.Forwarded-before != 2*n || st.SendFailed != 0 {
		t.Fatalf("forwarded %d of %d, %d refused by the kernel", st.Forwarded-before, 2*n, st.SendFailed)
	}
	if got < n/2 {
		t.Fatalf("%d of %d arrived", got, n)
	}
}

// TestFastPathQuota: the bandwidth quota holds on the fast path.
func TestFastPathQuota(t *testing.T) {
	f := start(t, func(c *Config) { c.AllocationRate = 10000 })
	a, b := relayedPair(t, f)
	time.Sleep(1100 * time.Millisecond) // the bucket full again
	before := f.srv.Stats()
	const sent = 100
	for range sent {
		if _, err := a.WriteTo(make([]byte, 1000), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	buf := make([]byte, 1600)
	for {
		b.SetReadDeadline(time.Now().Add(2 * time.Second)) // quiet for 2 s: all that crosses has
		if _, _, err := b.ReadFrom(buf); err != nil {
			break
		}
		got++
	}
	after := f.srv.Stats()
	if got < 5 || got > 20 {
		t.Fatalf("%d of %d 1000-byte datagrams crossed a 10 kB/s quota", got, sent)
	}
	if after.Forwarded-before.Forwarded < 2*uint64(got) || after.DroppedBytes-before.DroppedBytes < (sent-20)*1000 {
		t.Fatalf("forwarded %d, dropped %d bytes", after.Forwarded-before.Forwarded, after.DroppedBytes-before.DroppedBytes)
	}
}

// TestFastPathOnlyFromTheClient: ChannelData with a bound channel number
// from any address other than the allocation's client, and on a channel
// number not bound, is not relayed.
func TestFastPathOnlyFromTheClient(t *testing.T) {
	f := start(t, nil)
	a, b := relayedPair(t, f)
	var ch uint16
	for _, l := range f.srv.udpLns {
		l.mu.RLock()
		for k := range l.bound {
			ch = k.ch
		}
		l.mu.RUnlock()
	}
	if ch == 0 {
		t.Fatal("no channel bound")
	}
	spoof, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer spoof.Close()
	before := f.srv.Stats().Forwarded
	for _, c := range []uint16{ch, ch + 1, 0x4000, 0x7fff} {
		msg := []byte{byte(c >> 8), byte(c), 0, 4, 'e', 'v', 'i', 'l'}
		if _, err := spoof.WriteTo(msg, f.srv.UDPAddr()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []net.PacketConn{a, b} {
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, _, err := c.ReadFrom(make([]byte, 64)); err == nil {
			t.Fatalf("a datagram of %d bytes crossed from an address without the channel", n)
		}
	}
	if got := f.srv.Stats().Forwarded; got != before {
		t.Fatalf("fast path relayed %d datagrams from a stranger", got-before)
	}
}

func TestParseChannelData(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		ch   uint16
		data string
		err  error
	}{
		{"data", []byte{0x40, 0x01, 0, 3, 'a', 'b', 'c'}, 0x4001, "abc", nil},
		{"padded", []byte{0x40, 0x01, 0, 3, 'a', 'b', 'c', 0}, 0x4001, "abc", nil},
		{"empty", []byte{0x7f, 0xff, 0, 0}, 0x7fff, "", nil},
		{"short", []byte{0x40, 0x01, 0}, 0, "", errChannelDataShort},
		{"STUN", []byte{0x00, 0x01, 0, 0}, 0, "", errChannelNumber},
		{"reserved", []byte{0x80, 0x00, 0, 0}, 0, "", errChannelNumber},
		{"too long", []byte{0x40, 0x01, 0, 5, 'a', 'b', 'c'}, 0, "", errChannelDataLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, data, err := parseChannelData(tc.in)
			if err != tc.err || ch != tc.ch || string(data) != tc.data {
				t.Fatalf("got %#x %q %v, want %#x %q %v", ch, data, err, tc.ch, tc.data, tc.err)
			}
		})
	}
}

func TestFrameChannelData(t *testing.T) {
	frame := make([]byte, chanHeader+8+channelPadding)
	for i := range frame {
		frame[i] = 0xee
	}
	copy(frame[chanHeader:], "hello")
	got := frameChannelData(frame, 0x4abc, 5)
	want := []byte{0x4a, 0xbc, 0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Fatalf("% x, want % x", got, want)
	}
	if ch, data, err := parseChannelData(got); err != nil || ch != 0x4abc || string(data) != "hello" {
		t.Fatalf("round trip: %#x %q %v", ch, data, err)
	}
}

func FuzzParseChannelData(f *testing.F) {
	for _, s := range [][]byte{
		{0x40, 0x01, 0, 3, 'a', 'b', 'c', 0}, {0x7f, 0xff, 0, 0}, {0x40, 0x00, 0xff, 0xff},
		{0x00, 0x01, 0, 8, 0x21, 0x12, 0xa4, 0x42}, {0x40}, {},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, data, err := parseChannelData(b)
		if err != nil {
			return
		}
		if ch < minChannel || ch > maxChannel || len(data) != int(binary.BigEndian.Uint16(b[2:])) ||
			!bytes.Equal(data, b[chanHeader:chanHeader+len(data)]) {
			t.Fatalf("% x parsed as %#x % x", b, ch, data)
		}
		frame := make([]byte, chanHeader+len(data)+channelPadding)
		copy(frame[chanHeader:], data)
		out := frameChannelData(frame, ch, len(data))
		if len(out)%4 != 0 {
			t.Fatalf("framed %d bytes, not a multiple of 4", len(out))
		}
		if ch2, data2, err := parseChannelData(out); err != nil || ch2 != ch || !bytes.Equal(data2, data) {
			t.Fatalf("round trip of % x: %#x % x %v", b, ch2, data2, err)
		}
	})
}
