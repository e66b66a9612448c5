// Command turnload drives a TURN relay (phonexd's or coturn) with clients
// in pairs: each client allocates a relayed address and sends to
// its partner's relayed address through the relay, as the two ends of a
// relayed call do. Credentials are TURN REST ones made from the shared
// secret, each client under its own user so that per-user caps do not
// limit the run.
//
// Mode rate sweeps an offered packet rate (all pairs, both directions)
// and reports, per step, what arrived; mode calls holds N pairs at 50
// packets per second each way (one relayed call) for a few counts of N.
// With -pid it reads the relay process's CPU time and RSS from /proc
// before and after each step. One JSON object per step goes to stdout.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/phonex/phonex/internal/server/relay"
)

type step struct {
	Mode         string  `json:"mode"`
	Pairs        int     `json:"pairs"`
	Offered      float64 `json:"offered_pps"` // packets per second sent, all directions
	Sent         int64   `json:"sent"`
	Received     int64   `json:"received"`
	Seconds      float64 `json:"seconds"`
	Rate         float64 `json:"received_pps"`
	Loss         float64 `json:"loss"`
	CPUSeconds   float64 `json:"relay_cpu_seconds,omitempty"`
	CPUPerPacket float64 `json:"relay_cpu_us_per_packet,omitempty"`
	CPUShare     float64 `json:"relay_cpu_share,omitempty"` // of one core
	RSSKiB       int64   `json:"relay_rss_kib,omitempty"`
	BaseRSSKiB   int64   `json:"relay_base_rss_kib,omitempty"`
}

func main() {
	server := flag.String("server", "127.0.0.1:3478", "relay address (UDP)")
	realm := flag.String("realm", "bench.test", "realm")
	secretFile := flag.String("secret-file", "", "shared secret file (TURN REST credentials)")
	mode := flag.String("mode", "rate", "rate (sweep offered packet rates) or calls (N pairs at 50 pkt/s each way)")
	pairs := flag.Int("pairs", 8, "pairs of clients (mode rate)")
	rates := flag.String("rates", "5000,10000,20000,30000,40000,50000,60000,80000", "offered packets/s to sweep (mode rate)")
	calls := flag.String("calls", "25,50,100,200,400", "pair counts to step through (mode calls)")
	callPPS := flag.Int("call-pps", 50, "packets per second each way per call (mode calls)")
	size := flag.Int("size", 100, "datagram size in bytes (an SRTP Opus packet is about 80-100)")
	secs := flag.Duration("duration", 4*time.Second, "length of each step")
	pid := flag.Int("pid", 0, "relay process to measure (CPU time, RSS)")
	stopLoss := flag.Float64("stop-loss", 0.05, "end the sweep after two steps in a row above this loss")
	flag.Parse()

	secret, err := relay.LoadSecret(*secretFile)
	if err != nil {
		log.Fatal(err)
	}
	g := &gen{server: *server, realm: *realm, secret: secret, size: *size, pid: *pid}
	defer g.close()
	enc := json.NewEncoder(os.Stdout)
	bad := 0
	switch *mode {
	case "rate":
		if err := g.grow(*pairs); err != nil {
			log.Fatal(err)
		}
		for _, r := range ints(*rates) {
			s := g.run("rate", float64(r), *secs)
			enc.Encode(s)
			if bad = next(bad, s.Loss > *stopLoss); bad >= 2 {
				break
			}
		}
	case "calls":
		for _, n := range ints(*calls) {
			if err := g.grow(n); err != nil {
				log.Printf("%d calls: %v", n, err)
				break
			}
			s := g.run("calls", float64(2*n**callPPS), *secs)
			enc.Encode(s)
			if bad = next(bad, s.Loss > *stopLoss); bad >= 2 {
				break
			}
		}
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
}

func next(bad int, isBad bool) int {
	if isBad {
		return bad + 1
	}
	return 0
}

func ints(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			log.Fatalf("bad number %q", f)
		}
		out = append(out, n)
	}
	return out
}

// end is one client: its relay connection and the channel to its
// partner's relayed address.
type end struct {
	c  *rawClient
	ch uint16
}

type gen struct {
	server string
	realm  string
	secret []byte
	size   int
	pid    int
	ends   []*end
	users  int

	epoch    atomic.Uint32 // step number, in each datagram's first 4 bytes after the channel header
	received atomic.Int64
	baseRSS  int64
}

func (g *gen) client() (*end, error) {
	g.users++
	cr := relay.Issue(g.secret, fmt.Sprintf("load%d@%s", g.users, g.realm), time.Hour, time.Now())
	c, err := dialRaw(g.server, cr.Username, cr.Password)
	if err != nil {
		return nil, err
	}
	if err := c.allocate(); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("allocate: %w", err)
	}
	return &end{c: c, ch: 0x4000}, nil
}

// grow adds pairs until there are n, each bound to the other's relayed
// address by a channel, with a receiver counting datagrams of the current
// step.
func (g *gen) grow(n int) error {
	if g.baseRSS == 0 && g.pid != 0 {
		g.baseRSS = rss(g.pid)
	}
	for len(g.ends)/2 < n {
		a, err := g.client()
		if err != nil {
			return err
		}
		b, err := g.client()
		if err != nil {
			a.c.release()
			return err
		}
		if err := a.c.bind(a.ch, b.c.relay); err != nil {
			return err
		}
		if err := b.c.bind(b.ch, a.c.relay); err != nil {
			return err
		}
		g.ends = append(g.ends, a, b)
		go g.receive(a)
		go g.receive(b)
	}
	time.Sleep(300 * time.Millisecond)
	return nil
}

const batch = 64

// receive counts ChannelData of the current step, reading in batches
// (recvmmsg).
func (g *gen) receive(e *end) {
	pc := ipv4.NewPacketConn(e.c.conn)
	msgs := make([]ipv4.Message, batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1600)}
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		ep := g.epoch.Load()
		got := int64(0)
		for _, m := range msgs[:n] {
			b := m.Buffers[0][:m.N]
			if len(b) >= 8 && b[0]&0xC0 == 0x40 && binary.BigEndian.Uint32(b[4:]) == ep {
				got++
			}
		}
		g.received.Add(got)
	}
}

// run sends pps datagrams per second in all for d, spread over the ends.
func (g *gen) run(mode string, pps float64, d time.Duration) step {
	ep := g.epoch.Add(1)
	g.received.Store(0)
	cpu0 := cpuSeconds(g.pid)
	per := pps / float64(len(g.ends))
	const tick = 10 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var sent atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i, e := range g.ends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, g.size)
			binary.BigEndian.PutUint32(payload, ep)
			frame := channelData(e.ch, payload)
			pc := ipv4.NewPacketConn(e.c.conn)
			msgs := make([]ipv4.Message, batch)
			for i := range msgs {
				msgs[i] = ipv4.Message{Buffers: [][]byte{frame}, Addr: e.c.server}
			}
			// Stagger the ends across the tick.
			time.Sleep(time.Duration(i) * tick / time.Duration(len(g.ends)))
			t := time.NewTicker(tick)
			defer t.Stop()
			due := 0.0
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				due += per * tick.Seconds()
				for due >= 1 {
					k := min(int(due), batch)
					n, err := pc.WriteBatch(msgs[:k], 0)
					if err != nil {
						break
					}
					sent.Add(int64(n))
					due -= float64(n)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	time.Sleep(300 * time.Millisecond) // the last datagrams in flight
	s := step{Mode: mode, Pairs: len(g.ends) / 2, Offered: pps, Sent: sent.Load(), Received: g.received.Load(), Seconds: el}
	s.Rate = float64(s.Received) / el
	if s.Sent > 0 {
		s.Loss = 1 - float64(s.Received)/float64(s.Sent)
	}
	if g.pid != 0 {
		s.CPUSeconds = cpuSeconds(g.pid) - cpu0
		if s.Received > 0 {
			s.CPUPerPacket = s.CPUSeconds / float64(s.Received) * 1e6
		}
		s.CPUShare = s.CPUSeconds / (el + 0.3)
		s.RSSKiB = rss(g.pid)
		s.BaseRSSKiB = g.baseRSS
	}
	log.Printf("%s: %d pairs, offered %.0f/s, sent %d, received %d (%.0f/s, loss %.2f%%), relay CPU %.2fs",
		mode, s.Pairs, pps, s.Sent, s.Received, s.Rate, 100*s.Loss, s.CPUSeconds)
	return s
}

func (g *gen) close() {
	for _, e := range g.ends {
		e.c.release()
	}
}

// cpuSeconds is the process's user and system time (/proc/PID/stat fields
// 14 and 15, in clock ticks of 1/100 s on Linux).
func cpuSeconds(pid int) float64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// rss is the process's resident set in KiB (VmRSS of /proc/PID/status).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}
