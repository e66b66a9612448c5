package e2e

import (
	"bufio"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gatheredRe matches the debug line the ICE agent logs once it has its
// candidates (counts only, no addresses).
var gatheredRe = regexp.MustCompile(`msg="ICE candidates gathered" host=(\d+) srflx=(\d+) relay=(\d+)`)

// gathered returns the candidate counts by type of the ICE agent of a
// phonex process run with PHONEX_DEBUG set.
func gathered(t *testing.T, p *proc) map[string]int {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		if m := gatheredRe.FindStringSubmatch(sc.Text()); m != nil {
			out := map[string]int{}
			for i, k := range []string{"host", "srflx", "relay"} {
				out[k], _ = strconv.Atoi(m[i+1])
			}
			return out
		}
	}
	t.Fatalf("phonex %v logged no gathered candidates\n%s", p.cmd.Args[1:], p.stderr.String())
	return nil
}

// TestCallByAddressDefaultICE: a call by address without any ICE flag
// takes the cluster's STUN/TURN servers: both sides offer server-reflexive
// and relayed candidates besides host ones, and on one host the call still
// connects on the host pair (the cheapest that works, RFC 8445 §5.1.2).
func TestCallByAddressDefaultICE(t *testing.T) {
	c := newCluster(t)
	c.configure("relay_addr = 127.0.0.1:0", "relay_tls_addr = ")
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	tone := filepath.Join(c.tmp, "tone440.wav")
	writeTone(t, tone, 16000, 440, 5)
	rec := filepath.Join(c.tmp, "heard-by-bravo.wav")
	debug := []string{"PHONEX_DEBUG=1"}
	ans := startPhonexEnv(t, debug, "answer", "--json", "--record", rec, "--profile", c.profile("bravo/b1"), "--password-file", c.pw)
	ans.waitEvent(t, "listening", 20*time.Second)
	call := startPhonexEnv(t, debug, "call", "bravo@example.org", "--json", "--play", tone,
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	talk(t, call, ans, 3*time.Second)
	a, b := call.wait(t, 40*time.Second), ans.wait(t, 40*time.Second)
	if a["secure"].SAS == "" || a["secure"].SAS != b["secure"].SAS {
		t.Fatalf("SAS %q and %q", a["secure"].SAS, b["secure"].SAS)
	}
	for who, p := range map[string]*proc{"caller": call, "callee": ans} {
		n := gathered(t, p)
		if n["host"] == 0 || n["srflx"] == 0 || n["relay"] == 0 {
			t.Errorf("%s offered %v, want host, srflx and relay candidates", who, n)
		}
		if path, endPath, _ := pathEvents(t, p); path != "host" || endPath != "host" {
			t.Errorf("%s: path %q, end-of-call path %q, want host on loopback", who, path, endPath)
		}
		// A warning about the relay or the addresses offered would be
		// wrong here; one about a missing codec library is not this
		// test's matter.
		for _, l := range strings.Split(p.out.String(), "\n") {
			if strings.Contains(l, `"warning"`) && !strings.Contains(l, "Opus is unavailable") {
				t.Errorf("%s warned with a relay running:\n%s", who, p.out.String())
				break
			}
		}
		t.Logf("%s offered %v", who, gathered(t, p))
	}
	if f := dominant(t, rec); f < 435 || f > 445 {
		t.Errorf("bravo heard %.1f Hz, want 440", f)
	}
}

// TestCallByAddressWithoutRelay: a cluster without a relay answers
// relay_unavailable; a call by address then goes on with host candidates
// and one warning on each side, and a call with --relay ends with
// "relay unavailable" in words and as its JSON cause, before it rings.
func TestCallByAddressWithoutRelay(t *testing.T) {
	c := newCluster(t)
	c.configure("relay_enabled = false")
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")

	b2 := c.listen("bravo/b1")
	waitFor(t, "bravo/b1 ready", 20*time.Second, func() bool { return b2.first("ready").Type == "ready" })
	e := c.callFails("alpha/a1", "bravo@example.org", "--relay")
	if e.Cause != "relay_unavailable" || !strings.Contains(e.Reason, "relay unavailable") {
		t.Errorf("--relay without a relay: %+v", e)
	}
	t.Logf("--relay without a relay: %s", e.Reason)
	time.Sleep(500 * time.Millisecond)
	if got := b2.calls(); len(got) != 0 {
		t.Errorf("a call that could not be relayed rang bravo: %v", got)
	}
	b2.stop()

	debug := []string{"PHONEX_DEBUG=1"}
	ans := startPhonexEnv(t, debug, "answer", "--json", "--no-opus", "--profile", c.profile("bravo/b1"), "--password-file", c.pw)
	ans.waitEvent(t, "listening", 20*time.Second)
	call := startPhonexEnv(t, debug, "call", "bravo@example.org", "--json", "--no-opus",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	talk(t, call, ans, time.Second)
	a, b := call.wait(t, 40*time.Second), ans.wait(t, 40*time.Second)
	if a["secure"].SAS == "" || a["secure"].SAS != b["secure"].SAS {
		t.Fatalf("SAS %q and %q", a["secure"].SAS, b["secure"].SAS)
	}
	for who, p := range map[string]*proc{"caller": call, "callee": ans} {
		if n := strings.Count(p.out.String(), `"event":"warning"`); n != 1 || !strings.Contains(p.out.String(), "no STUN/TURN relay") {
			t.Errorf("%s: %d warnings, want one about the missing relay:\n%s", who, n, p.out.String())
		}
		if n := gathered(t, p); n["host"] == 0 || n["srflx"] != 0 || n["relay"] != 0 {
			t.Errorf("%s offered %v, want host candidates only", who, n)
		}
		if path, _, _ := pathEvents(t, p); path != "host" {
			t.Errorf("%s: path %q, want host", who, path)
		}
	}
}
