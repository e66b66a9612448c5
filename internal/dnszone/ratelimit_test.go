package dnszone

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/phonex/phonex/internal/udptcp"
)

func TestLimiter(t *testing.T) {
	l := newLimiter(10)
	now := t0
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 20 {
		if ok, _ := l.allow(a, now); !ok {
			t.Fatalf("answer %d of the burst refused", i)
		}
	}
	var slips, drops int
	for range 10 {
		ok, slip := l.allow(netip.MustParseAddr("192.0.2.200"), now) // same /24
		switch {
		case ok:
			t.Fatal("answer beyond the burst")
		case slip:
			slips++
		default:
			drops++
		}
	}
	if slips != 5 || drops != 5 {
		t.Fatalf("%d slips, %d drops; want every second answer slipped", slips, drops)
	}
	if ok, _ := l.allow(netip.MustParseAddr("198.51.100.1"), now); !ok {
		t.Fatal("another network limited")
	}
	if ok, _ := l.allow(netip.MustParseAddr("2001:db8:0:ff::1"), now); !ok {
		t.Fatal("an IPv6 network limited")
	}
	now = now.Add(time.Second)
	for i := range 10 {
		if ok, _ := l.allow(a, now); !ok {
			t.Fatalf("answer %d a second later refused", i)
		}
	}
	if ok, _ := l.allow(a, now); ok {
		t.Fatal("more than the rate a second later")
	}
	// A reader that read the clock before another took the lock first is
	// not charged for the time between them.
	b := netip.MustParseAddr("203.0.113.1")
	for range 20 {
		l.allow(b, now)
	}
	l.allow(b, now.Add(200*time.Millisecond)) // refills 2 tokens, takes one
	if ok, _ := l.allow(b, now.Add(150*time.Millisecond)); !ok {
		t.Fatal("a query stamped before the last one refused with tokens left")
	}
}

// TestRateLimitUDP: a flood from one address gets the burst answered, then
// truncated replies for some queries and nothing for others, while TCP
// still answers.
func TestRateLimitUDP(t *testing.T) {
	now := time.Now()
	ksk, _ := GenerateKey(origin, ECDSAP256, true)
	zsk, _ := GenerateKey(origin, ECDSAP256, false)
	z, err := New(Config{Origin: origin, KSK: ksk, ZSK: zsk, RateLimit: 5, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	pc, ln, err := udptcp.Listen("udp", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- z.Serve(ctx, pc, ln) }()
	defer func() { cancel(); <-done }()

	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const sent = 40
	start := time.Now()
	for i := range sent {
		q := query(origin, dns.TypeDNSKEY, true)
		q.Id = uint16(i)
		b, _ := q.Pack()
		c.Write(b)
	}
	var full, truncated int
	last := start
	buf := make([]byte, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(2 * time.Second)) // quiet for 2 s: every answer is in
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		last = time.Now()
		m := new(dns.Msg)
		if err := m.Unpack(buf[:n]); err != nil {
			t.Fatal(err)
		}
		if m.Truncated && len(m.Answer) == 0 {
			truncated++
		} else {
			full++
		}
	}
	// The burst (twice the rate) plus what refills while the flood lasts.
	refill := int(last.Sub(start).Seconds()*5) + 1
	if full < 10 || full > 10+refill || truncated == 0 || full+truncated >= sent {
		t.Fatalf("%d full, %d truncated of %d", full, truncated, sent)
	}
	tcp := &dns.Client{Net: "tcp"}
	m, _, err := tcp.Exchange(query(origin, dns.TypeDNSKEY, true), pc.LocalAddr().String())
	if err != nil || len(m.Answer) == 0 {
		t.Fatalf("TCP under the UDP limit: %v", err)
	}
}
