package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/ice"
	"github.com/phonex/phonex/internal/ice/iceturn"
	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/wav"
	"github.com/phonex/phonex/internal/sipua"
	"github.com/phonex/phonex/internal/testpeer"
)

// The NAT test builds this network of namespaces (every address is inside
// them; 198.18.0.0/15 is the benchmarking range of RFC 2544):
//
//	devA 10.0.1.2 ── 10.0.1.1 natA 198.18.1.2 ── 198.18.1.1 pub 198.18.2.1 ── 198.18.2.2 natB 10.0.2.1 ── 10.0.2.2 devB
//	devA 10.99.0.1 ─────────────────── signalling link ─────────────────────────────────────────── 10.99.0.2 devB
//
// pub routes between the two NATs and runs the STUN/TURN server on
// 198.18.1.1:3478. The NATs masquerade what leaves their wan0 and drop
// anything new that arrives on it. SIP goes over the signalling link, which
// stands in for the cluster's routing of the INVITE; media may only cross
// the NATs: the devices' host addresses are unreachable from each other.
const (
	natEnvRole = "PHONEX_NAT_HELPER"
	natEnvConf = "PHONEX_NAT_CONF"
	turnSecret = "nat-test-secret"
)

// natHelperConf tells a helper process what to do.
type natHelperConf struct {
	SIP, RTP, Target string
	Servers          ice.Servers
	Play             float64 // tone frequency to send
	Record, Cache    string
}

// natHelperMain runs the helper role of a re-executed test binary inside
// a namespace and exits; it returns when this process is no helper.
func natHelperMain() {
	role := os.Getenv(natEnvRole)
	if role == "" {
		return
	}
	var conf natHelperConf
	if err := json.Unmarshal([]byte(os.Getenv(natEnvConf)), &conf); err != nil {
		fmt.Fprintln(os.Stderr, "helper config:", err)
		os.Exit(2)
	}
	if err := runNATHelper(role, conf); err != nil {
		fmt.Fprintln(os.Stderr, role+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runNATHelper(role string, conf natHelperConf) error {
	out := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	emit := func(e sipua.Event) {
		mu.Lock()
		defer mu.Unlock()
		_ = out.Encode(e)
	}
	switch role {
	case "turn":
		srv, err := iceturn.Start(conf.SIP, turnSecret)
		if err != nil {
			return err
		}
		defer srv.Close()
		fmt.Println(`{"event":"ready"}`)
		_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes stdin
		fmt.Printf("{\"event\":\"turn_done\",\"allocations\":%d}\n", srv.Allocations())
		return nil
	case "call", "answer":
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	cache, err := sipua.OpenFileStore(conf.Cache)
	if err != nil {
		return err
	}
	// Debug logs go to stderr, which the test shows only when it fails.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ua, err := sipua.NewUA(sipua.Config{Listen: conf.SIP, Logger: log})
	if err != nil {
		return err
	}
	defer ua.Close()
	opts := sipua.CallOptions{Cache: cache, RTPHost: conf.RTP, Record: conf.Record, OnEvent: emit, Logger: log,
		ICE:  sipua.ICEOptions{Servers: conf.Servers, Timeout: 20 * time.Second},
		Play: &wav.Audio{SampleRate: 16000, Samples: dsp.Sine(16000*4, 16000, conf.Play, 0.5)}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var c *sipua.Call
	if role == "answer" {
		emit(sipua.Event{Type: sipua.EventListening, Time: time.Now(), Peer: ua.URI()})
		c, err = ua.Accept(ctx, opts)
	} else {
		c, err = ua.Dial(ctx, conf.Target, opts)
	}
	if err != nil {
		return err
	}
	if role == "call" {
		// Four seconds of tone counted from the call being secure: ICE
		// and ZRTP take their time on a loaded machine.
		for c.Secure() == nil && ctx.Err() == nil {
			select {
			case <-c.Done():
				return c.Wait(ctx)
			case <-time.After(50 * time.Millisecond):
			}
		}
		select {
		case <-time.After(4 * time.Second):
		case <-c.Done():
		}
		_ = c.Hangup(ctx)
	}
	return c.Wait(ctx)
}

// netns is the namespaces of one test run, deleted by Cleanup.
type netns struct {
	t      *testing.T
	prefix string
	names  []string
}

func (n *netns) run(args ...string) {
	n.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// in runs a command in namespace ns.
func (n *netns) in(ns string, args ...string) {
	n.t.Helper()
	n.run(append([]string{"ip", "netns", "exec", n.prefix + ns}, args...)...)
}

func (n *netns) add(ns string) error {
	out, err := exec.Command("ip", "netns", "add", n.prefix+ns).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns add: %v: %s", err, strings.TrimSpace(string(out)))
	}
	n.names = append(n.names, n.prefix+ns)
	n.in(ns, "ip", "link", "set", "lo", "up")
	return nil
}

// link joins a and b with a veth pair named ifA in a and ifB in b.
func (n *netns) link(a, ifA, addrA, b, ifB, addrB string) {
	n.t.Helper()
	n.run("ip", "-n", n.prefix+a, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", n.prefix+b)
	n.in(a, "ip", "addr", "add", addrA, "dev", ifA)
	n.in(b, "ip", "addr", "add", addrB, "dev", ifB)
	n.in(a, "ip", "link", "set", ifA, "up")
	n.in(b, "ip", "link", "set", ifB, "up")
}

// natRules masquerades what leaves wan0 (with a port kept per source:
// endpoint-independent mapping; or a random port per destination:
// symmetric) and drops new flows arriving on wan0, as a home router does.
func natRules(symmetric bool) string {
	masq := "masquerade"
	if symmetric {
		masq = "masquerade fully-random"
	}
	return `table ip nat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept; oifname "wan0" ` + masq + `; }
}
table ip filter {
  chain input { type filter hook input priority 0; policy accept; iifname "wan0" ct state new drop; }
  chain forward { type filter hook forward priority 0; policy accept; iifname "wan0" ct state new drop; }
}
`
}

// buildNAT creates the network above; symmetric picks the NAT kind.
func buildNAT(t *testing.T, symmetric bool) *netns {
	var sfx [3]byte
	_, _ = rand.Read(sfx[:])
	n := &netns{t: t, prefix: "pxnat" + hex.EncodeToString(sfx[:]) + "-"}
	t.Cleanup(func() {
		for _, name := range n.names {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Logf("ip netns del %s: %v %s", name, err, out)
			}
		}
	})
	if err := n.add("pub"); err != nil {
		testpeer.Missing(t, "network namespaces", "cannot create a network namespace (needs root and CAP_SYS_ADMIN): "+err.Error())
	}
	for _, ns := range []string{"natA", "natB", "devA", "devB"} {
		if err := n.add(ns); err != nil {
			t.Fatal(err)
		}
	}
	n.link("devA", "lan0", "10.0.1.2/24", "natA", "lan0", "10.0.1.1/24")
	n.link("devB", "lan0", "10.0.2.2/24", "natB", "lan0", "10.0.2.1/24")
	n.link("natA", "wan0", "198.18.1.2/24", "pub", "a0", "198.18.1.1/24")
	n.link("natB", "wan0", "198.18.2.2/24", "pub", "b0", "198.18.2.1/24")
	n.link("devA", "sig0", "10.99.0.1/24", "devB", "sig0", "10.99.0.2/24")
	n.in("devA", "ip", "route", "add", "default", "via", "10.0.1.1")
	n.in("devB", "ip", "route", "add", "default", "via", "10.0.2.1")
	n.in("natA", "ip", "route", "add", "default", "via", "198.18.1.1")
	n.in("natB", "ip", "route", "add", "default", "via", "198.18.2.1")
	for _, ns := range []string{"pub", "natA", "natB"} {
		n.in(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	rules := filepath.Join(t.TempDir(), "nat.nft")
	if err := os.WriteFile(rules, []byte(natRules(symmetric)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"natA", "natB"} {
		n.in(ns, "nft", "-f", rules)
	}
	return n
}

// helper is a re-executed test binary running a role in a namespace.
type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan map[string]any
	done   chan struct{}
	stderr strings.Builder
	all    []map[string]any
	mu     sync.Mutex
}

func (n *netns) start(ns, role string, conf natHelperConf) *helper {
	n.t.Helper()
	self, err := os.Executable()
	if err != nil {
		n.t.Fatal(err)
	}
	b, _ := json.Marshal(conf)
	h := &helper{events: make(chan map[string]any, 64), done: make(chan struct{})}
	h.cmd = exec.Command("ip", "netns", "exec", n.prefix+ns, self, "-test.run=^$")
	h.cmd.Env = append(os.Environ(), natEnvRole+"="+role, natEnvConf+"="+string(b))
	h.cmd.Stderr = &h.stderr
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		n.t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() {
		h.stdin.Close()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	})
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) != nil {
				continue
			}
			h.mu.Lock()
			h.all = append(h.all, m)
			h.mu.Unlock()
			select {
			case h.events <- m:
			default:
			}
		}
		_ = h.cmd.Wait()
	}()
	return h
}

// wait returns the first event of type ev.
func (h *helper) wait(t *testing.T, ev string, d time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-h.events:
			if m["event"] == ev {
				return m
			}
		case <-h.done:
			h.mu.Lock()
			for _, m := range h.all {
				if m["event"] == ev {
					h.mu.Unlock()
					return m
				}
			}
			h.mu.Unlock()
			t.Fatalf("helper ended without %q: %s", ev, h.stderr.String())
		case <-deadline:
			t.Fatalf("no %q event: %s", ev, h.stderr.String())
		}
	}
}

func (h *helper) finish(t *testing.T) []map[string]any {
	t.Helper()
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("helper did not end: %s", h.stderr.String())
	}
	if !h.cmd.ProcessState.Success() {
		t.Fatalf("helper failed: %s", h.stderr.String())
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.all
}

func TestNATTraversal(t *testing.T) {
	testpeer.Require(t, "ip")
	testpeer.Require(t, "nft")
	for _, tt := range []struct {
		name      string
		symmetric bool
		path      string
	}{
		{"endpoint-independent NATs go peer to peer", false, "srflx"},
		{"symmetric NATs go through the relay", true, "relay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := buildNAT(t, tt.symmetric)
			dir := t.TempDir()
			turn := n.start("pub", "turn", natHelperConf{SIP: "198.18.1.1:3478"})
			turn.wait(t, "ready", 30*time.Second)
			srv, err := (&iceturnCreds{}).servers("198.18.1.1:3478")
			if err != nil {
				t.Fatal(err)
			}
			recA, recB := filepath.Join(dir, "a.wav"), filepath.Join(dir, "b.wav")
			callee := n.start("devB", "answer", natHelperConf{SIP: "10.99.0.2:5060", RTP: "10.0.2.2", Servers: srv,
				Play: 660, Record: recB, Cache: filepath.Join(dir, "zb")})
			callee.wait(t, "listening", 30*time.Second)
			caller := n.start("devA", "call", natHelperConf{SIP: "10.99.0.1:5060", RTP: "10.0.1.2", Servers: srv,
				Target: "sip:phonex@10.99.0.2:5060", Play: 440, Record: recA, Cache: filepath.Join(dir, "za")})
			evA, evB := caller.finish(t), callee.finish(t)
			for _, side := range []struct {
				who    string
				events []map[string]any
				rec    string
				tone   float64
			}{{"caller", evA, recA, 660}, {"callee", evB, recB, 440}} {
				var path, sas string
				var stats map[string]any
				for _, e := range side.events {
					switch e["event"] {
					case "path":
						if path == "" {
							path, _ = e["path"].(string)
						}
					case "secure":
						sas, _ = e["sas"].(string)
					case "ended":
						stats, _ = e["stats"].(map[string]any)
					}
				}
				if path != tt.path {
					t.Errorf("%s: path %q, want %q (events %v)", side.who, path, tt.path, side.events)
				}
				if sas == "" {
					t.Errorf("%s: no SAS", side.who)
				}
				if stats == nil || stats["path"] != tt.path || stats["ice"] != true {
					t.Errorf("%s: end-of-call stats %v", side.who, stats)
				}
				if f := dominant(t, side.rec); f < side.tone-5 || f > side.tone+5 {
					t.Errorf("%s recorded %.1f Hz, want %.0f", side.who, f, side.tone)
				}
			}
			turn.stdin.Close()
			if tt.path == "relay" {
				if m := turn.wait(t, "turn_done", 30*time.Second); m["allocations"].(float64) < 1 {
					t.Errorf("the TURN server made no allocation")
				}
			}
		})
	}
}

// iceturnCreds makes TURN REST credentials for the helpers' server.
type iceturnCreds struct{}

func (iceturnCreds) servers(addr string) (ice.Servers, error) {
	return iceturn.Credentials(addr, turnSecret, "nat-test")
}

// pxIn runs a phonex or phonexd command inside the namespace ns.
func (n *netns) pxIn(ns, name string, args ...string) string {
	n.t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.prefix + ns, filepath.Join(bin, name)}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		n.t.Fatalf("%s %s in %s: %v\n%s%s", name, strings.Join(args, " "), ns, err, out, stderr)
	}
	return string(out)
}

// startIn starts a phonex call or answer inside the namespace ns.
func (n *netns) startIn(ns string, env []string, args ...string) *proc {
	n.t.Helper()
	q := &proc{cmd: exec.Command("ip", append([]string{"netns", "exec", n.prefix + ns, filepath.Join(bin, "phonex")}, args...)...),
		done: make(chan error, 1)}
	q.cmd.Stdout, q.cmd.Stderr = &q.out, &q.stderr
	q.cmd.Env = append(os.Environ(), env...)
	var err error
	if q.stdin, err = q.cmd.StdinPipe(); err != nil {
		n.t.Fatal(err)
	}
	if err := q.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	go func() { q.done <- q.cmd.Wait() }()
	n.t.Cleanup(func() {
		if q.cmd.ProcessState == nil {
			q.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-q.done:
			case <-time.After(5 * time.Second):
				q.cmd.Process.Kill()
			}
		}
	})
	return q
}

// TestNATTraversalThroughNode: the same two NATs, with the real phonexd
// (API, SIP and its STUN/TURN relay, relay_external_ip set to its public
// address) in the public namespace instead of a bare TURN server and a
// signalling link. Both devices enroll and register through their NATs
// and call by address (phonex call bravo@example.org / phonex answer)
// with no ICE flag: the call fetches the cluster's STUN/TURN servers
// itself. Endpoint-independent NATs give a peer-to-peer srflx path,
// symmetric ones the relay; tones cross both ways.
func TestNATTraversalThroughNode(t *testing.T) {
	testpeer.Require(t, "ip")
	testpeer.Require(t, "nft")
	const public = "198.18.1.1"
	for _, tt := range []struct {
		name      string
		symmetric bool
		path      string
	}{
		{"endpoint-independent NATs go peer to peer", false, "srflx"},
		{"symmetric NATs go through the node's relay", true, "relay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := buildNAT(t, tt.symmetric)
			tmp := t.TempDir()
			data, pw := filepath.Join(tmp, "data"), filepath.Join(tmp, "pw")
			os.WriteFile(pw, []byte("device password\n"), 0o600)
			mustRun(t, nil, "phonexd", "init", "--data", data, "--domain", "example.org", "--host", public)
			c := &cluster{t: t, tmp: tmp, data: data, pw: pw}
			// The relay listens on the public address and writes it into
			// the relayed addresses and the URIs devices get.
			c.configure("relay_addr = "+public+":3478", "relay_tls_addr = ", "relay_external_ip = "+public)
			node := serveUnder(t, []string{"ip", "netns", "exec", n.prefix + "pub"}, data, public+":0", public+":0")
			enroll := func(ns, user, dev string) {
				act := decode[map[string]string](t, mustRun(t, nil, "phonexd", "user", "add", "--data", data, user+"@example.org", "--json"))
				n.pxIn(ns, "phonex", "enroll", user+"@example.org", "--profile", c.profile(user+"/"+dev), "--server", node.api,
					"--ca-file", filepath.Join(data, "ca.pem"), "--code", act["code"], "--device", dev, "--password-file", pw)
			}
			enroll("devA", "alpha", "a1")
			enroll("devB", "bravo", "b1")
			n.pxIn("devA", "phonex", "contacts", "add", "bravo@example.org", "--profile", c.profile("alpha/a1"), "--password-file", pw)
			n.pxIn("devB", "phonex", "contacts", "add", "alpha@example.org", "--profile", c.profile("bravo/b1"), "--password-file", pw)
			creds := decode[relayCreds](t, n.pxIn("devA", "phonex", "relay-credentials", "--json", "--profile", c.profile("alpha/a1"), "--password-file", pw))
			for _, u := range append(creds.URIs, creds.STUN...) {
				if !strings.Contains(u, public+":3478") {
					t.Errorf("the node hands out %q, want its public address %s:3478", u, public)
				}
			}

			toneA, toneB := filepath.Join(tmp, "440.wav"), filepath.Join(tmp, "660.wav")
			writeTone(t, toneA, 16000, 440, 6)
			writeTone(t, toneB, 16000, 660, 8)
			recA, recB := filepath.Join(tmp, "heard-by-alpha.wav"), filepath.Join(tmp, "heard-by-bravo.wav")
			debug := []string{"PHONEX_DEBUG=1"}
			ans := n.startIn("devB", debug, "answer", "--json", "--play", toneB, "--record", recB,
				"--profile", c.profile("bravo/b1"), "--password-file", pw)
			ans.waitEvent(t, "listening", 20*time.Second)
			call := n.startIn("devA", debug, "call", "bravo@example.org", "--json", "--play", toneA, "--record", recA,
				"--profile", c.profile("alpha/a1"), "--password-file", pw)
			// ip netns exec runs phonex in its own place: the interrupt reaches it.
			talk(t, call, ans, 3*time.Second)
			a, b := call.wait(t, 60*time.Second), ans.wait(t, 60*time.Second)
			if a["secure"].SAS == "" || a["secure"].SAS != b["secure"].SAS {
				t.Fatalf("SAS %q and %q", a["secure"].SAS, b["secure"].SAS)
			}
			for _, side := range []struct {
				who  string
				p    *proc
				rec  string
				tone float64
			}{{"caller", call, recA, 660}, {"callee", ans, recB, 440}} {
				if got := gathered(t, side.p); got["srflx"] == 0 || got["relay"] == 0 {
					t.Errorf("%s gathered %v, want srflx and relay candidates from the node", side.who, got)
				}
				if path, endPath, endICE := pathEvents(t, side.p); path != tt.path || endPath != tt.path || !endICE {
					t.Errorf("%s: path %q, end-of-call path %q (ICE %v), want %s\n%s", side.who, path, endPath, endICE, tt.path, side.p.out.String())
				}
				f := dominant(t, side.rec)
				if f < side.tone-5 || f > side.tone+5 {
					t.Errorf("%s heard %.1f Hz, want %.0f", side.who, f, side.tone)
				}
				path, _, _ := pathEvents(t, side.p)
				t.Logf("%s: gathered %v, path %s, heard %.0f Hz, SAS %s", side.who, gathered(t, side.p), path, f, a["secure"].SAS)
			}
		})
	}
}
