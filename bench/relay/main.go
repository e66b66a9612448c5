// Command relay measures MESSAGE relaying through a running phonexd: many
// enrolled devices, each sender on its own mutual-TLS SIP connection, every
// check of the node on (certificate, contact list, rate limit, durable
// storage before the 200, delivery to the registered device). It reports the
// sustained end-to-end rate and the latency at half that rate.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/server"
)

func main() {
	api := flag.String("api", "", "phonexd API address")
	sipAddr := flag.String("sip", "", "phonexd SIP address")
	data := flag.String("data", "", "phonexd data directory")
	pairs := flag.Int("pairs", 20, "sender/receiver device pairs")
	dur := flag.Duration("duration", 8*time.Second, "length of each run")
	size := flag.Int("size", 600, "message body bytes (an envelope's typical size)")
	pid := flag.Int("pid", 0, "phonexd's process id, to measure its CPU time per MESSAGE")
	recvSIP := flag.String("recv-sip", "", "SIP address the receivers register with (another node of the cluster; default -sip)")
	pid2 := flag.Int("pid2", 0, "the other node's process id, with -recv-sip: its CPU time counts too")
	flag.StringVar(&prefix, "prefix", "", "prefix of the bench accounts' names, for another run on the same store")
	split := flag.Bool("split", false, "with -recv-sip and -pid2: odd pairs (sender and receiver) use the other node, even pairs this one, so two nodes share the load without crossing")
	dbPID := flag.Int("db-pid", 0, "the database server's main process (PostgreSQL's postmaster): its CPU time and its children's is reported apart")
	flag.Parse()
	if *recvSIP == "" {
		*recvSIP = *sipAddr
	}
	other = nodeRef{sip: *recvSIP, pid: *pid2, split: *split}
	dbServer = *dbPID
	if err := run(*api, *sipAddr, *data, *pairs, *dur, *size, *pid); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

// prefix starts the bench accounts' names.
var prefix string

// dbServer is the database server's main process, 0 if none.
var dbServer int

// other is the node the receivers use: the same as the senders' unless
// -recv-sip names another node of the cluster.
var other nodeRef

type nodeRef struct {
	sip   string
	pid   int
	split bool
}

// senderSIP and receiverSIP are where pair i's devices connect.
func senderSIP(first string, i int) string {
	if other.split && i%2 == 1 {
		return other.sip
	}
	return first
}

func receiverSIP(first string, i int) string {
	if other.split {
		return senderSIP(first, i)
	}
	return other.sip
}

type peer struct {
	user string
	w    *wireConn
}

var sentAt sync.Map // message id -> time.Time

type stats struct {
	received atomic.Int64
	mu       sync.Mutex
	lat      []time.Duration
	record   atomic.Bool
}

func run(api, sipAddr, data string, pairs int, dur time.Duration, size, pid int) error {
	ctx := context.Background()
	cfg, err := server.LoadConfig(data)
	if err != nil {
		return err
	}
	adm, err := server.OpenAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer adm.Close()
	tmp, _ := os.MkdirTemp("", "relay-")
	defer os.RemoveAll(tmp)
	caFile := filepath.Join(data, ca.CACertFile)
	enroll := func(user string) (*client.Profile, error) {
		act, err := adm.AddUser(ctx, user, 0)
		if err != nil {
			return nil, err
		}
		return client.Enroll(ctx, client.EnrollRequest{Dir: filepath.Join(tmp, user), User: user, Device: "d", Server: api, CAFile: caFile,
			Code: act.Code, Password: []byte("bench password")}, &client.Options{KDF: kdf.Params{LogN: 14, R: 8, P: 1}})
	}
	st := &stats{}
	senders, receivers := make([]*peer, pairs), make([]*peer, pairs)
	// Enrollment is slow by design (the password KDF), so pairs are
	// enrolled a few at a time.
	var (
		wg    sync.WaitGroup
		emu   sync.Mutex
		first error
		slots = make(chan struct{}, 4)
	)
	for i := 0; i < pairs; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			s, r, err := enrollPair(ctx, enroll, i, cfg.Domain, sipAddr, st)
			emu.Lock()
			defer emu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			senders[i], receivers[i] = s, r
		}(i)
	}
	wg.Wait()
	if first != nil {
		return first
	}
	for _, r := range receivers {
		if err := register(ctx, r, st); err != nil {
			return err
		}
	}
	body := make([]byte, size)
	rand.Read(body)

	// Run 1: as fast as the node goes.
	st.received.Store(0)
	var sent, failed atomic.Int64
	node0, self0, db0 := cpuTime(pid)+cpuTime(other.pid), cpuTime(os.Getpid()), treeCPU(dbServer)
	start := time.Now()
	deadline := start.Add(dur)
	for i := range senders {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := message(ctx, senders[i], receivers[i].user, body, false); err != nil {
					failed.Add(1)
					continue
				}
				sent.Add(1)
			}
		}(i)
	}
	wg.Wait()
	time.Sleep(2 * time.Second) // let the last deliveries land
	elapsed := time.Since(start) - 2*time.Second
	got := st.received.Load()
	node, self, db := cpuTime(pid)+cpuTime(other.pid)-node0, cpuTime(os.Getpid())-self0, treeCPU(dbServer)-db0
	rate := float64(got) / elapsed.Seconds()
	fmt.Printf("| phonexd: MESSAGEs relayed end to end per second (%d sender and %d receiver devices, mutual TLS, durable before the 200: taken by the online, idle receiver first, or stored) | %.0f |\n", pairs, pairs, rate)
	if pid > 0 && got > 0 {
		perMsg := node / time.Duration(got)
		fmt.Printf("| phonexd: CPU time per relayed MESSAGE (user + system, all threads) | %d µs |\n", perMsg.Microseconds())
		fmt.Printf("| load generator (bench/relay, 2 TLS devices per pair): CPU time per MESSAGE | %d µs |\n", (self / time.Duration(got)).Microseconds())
		fmt.Printf("CPU %d\n", perMsg.Microseconds())
		// Machine-readable for bench/scale.sh: the generator's CPU per
		// MESSAGE and its share of the machine's CPU time during the run.
		fmt.Printf("GENCPU %d\n", (self / time.Duration(got)).Microseconds())
		fmt.Printf("GENSHARE %.0f\n", 100*self.Seconds()/(elapsed.Seconds()*float64(runtime.NumCPU())))
		fmt.Printf("NODESHARE %.0f\n", 100*node.Seconds()/(elapsed.Seconds()*float64(runtime.NumCPU())))
		if dbServer > 0 {
			fmt.Printf("| database server: CPU time per relayed MESSAGE (all its processes) | %d µs |\n", (db / time.Duration(got)).Microseconds())
			fmt.Printf("DBCPU %d\n", (db / time.Duration(got)).Microseconds())
		}
	}
	if failed.Load() > 0 {
		fmt.Printf("| phonexd: refused or failed sends in run 1 | %d of %d |\n", failed.Load(), sent.Load()+failed.Load())
	}

	// Run 2: latency at half that rate.
	half := rate / 2
	interval := time.Duration(float64(time.Second) * float64(pairs) / half)
	st.record.Store(true)
	deadline = time.Now().Add(dur)
	for i := range senders {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t := time.NewTicker(interval)
			defer t.Stop()
			for time.Now().Before(deadline) {
				<-t.C
				message(ctx, senders[i], receivers[i].user, body, true)
			}
		}(i)
	}
	wg.Wait()
	time.Sleep(2 * time.Second)
	st.mu.Lock()
	lat := append([]time.Duration{}, st.lat...)
	st.mu.Unlock()
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	if len(lat) > 0 {
		fmt.Printf("| phonexd: latency at %.0f msg/s, send to arrival, p50 / p99 (%d messages) | %v / %v |\n", half, len(lat),
			lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond))
	}
	fmt.Printf("RATE %.0f\n", rate)
	return nil
}

// cpuTime is the user and system CPU time a process has used so far, from
// /proc (zero when unknown). Clock ticks are 1/100 s on Linux.
func cpuTime(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14, stime 15.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stime) * 10 * time.Millisecond
}

// treeCPU is the CPU time of pid and its children (a database server's
// backends), from /proc; children that exited during the run are lost.
func treeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	total := cpuTime(pid)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		child, err := strconv.Atoi(e.Name())
		if err != nil || child == pid {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			continue
		}
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		// After the command name: state, then the parent's pid.
		if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			total += cpuTime(child)
		}
	}
	return total
}

func enrollPair(ctx context.Context, enroll func(string) (*client.Profile, error), i int, domain, sipAddr string, st *stats) (*peer, *peer, error) {
	s, r := fmt.Sprintf("%ss%d@%s", prefix, i, domain), fmt.Sprintf("%sr%d@%s", prefix, i, domain)
	sp, err := enroll(s)
	if err != nil {
		return nil, nil, err
	}
	defer sp.Close()
	rp, err := enroll(r)
	if err != nil {
		return nil, nil, err
	}
	defer rp.Close()
	// Each lists the other: the node stores a MESSAGE only between
	// accounts that have added each other.
	if _, err := rp.AddContact(ctx, s); err != nil {
		return nil, nil, err
	}
	if _, err := sp.AddContact(ctx, r); err != nil {
		return nil, nil, err
	}
	sender, err := connect(sp, senderSIP(sipAddr, i), domain, nil)
	if err != nil {
		return nil, nil, err
	}
	receiver, err := connect(rp, receiverSIP(sipAddr, i), domain, st)
	if err != nil {
		return nil, nil, err
	}
	return sender, receiver, nil
}

func connect(p *client.Profile, sipAddr, domain string, st *stats) (*peer, error) {
	cert := tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Keys.Sign}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13, RootCAs: newPool(p.CA)}
	user := p.Device.Account.String()
	w, err := dialWire(sipAddr, tc, user)
	if err != nil {
		return nil, err
	}
	return &peer{user: user, w: w}, nil
}

// register binds the receiver's connection, then answers every MESSAGE
// that comes on it.
func register(ctx context.Context, p *peer, st *stats) error {
	code, err := p.w.do("REGISTER", p.user, "Contact: <sip:"+p.user+";transport=tls>\r\nExpires: 600\r\n", "", nil)
	if err != nil {
		return fmt.Errorf("register %s: %w", p.user, err)
	}
	if code != 200 {
		return fmt.Errorf("register %s: %d", p.user, code)
	}
	go p.w.receive(st)
	return nil
}

var seq atomic.Uint64

func message(ctx context.Context, p *peer, to string, body []byte, timed bool) error {
	b := append([]byte{}, body...)
	id := seq.Add(1)
	binary.BigEndian.PutUint64(b, id)
	if timed {
		sentAt.Store(id, time.Now())
	}
	code, err := p.w.do("MESSAGE", to, "", client.ContentType, b)
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("MESSAGE: %d", code)
	}
	return nil
}
