package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// failedEvent is the JSON line 'phonex call --json' prints when a call
// through the cluster does not connect.
type failedEvent struct {
	Event  string `json:"event"`
	Reason string `json:"reason"`
	Cause  string `json:"cause"`
}

// callFails runs a call that must not connect and returns its failure.
func (c *cluster) callFails(dev, to string, extra ...string) failedEvent {
	c.t.Helper()
	r := c.px(dev, append([]string{"call", to, "--json", "--no-opus"}, extra...)...)
	if r.code == 0 {
		c.t.Fatalf("call from %s to %s connected: %s", dev, to, r.out)
	}
	sc := bufio.NewScanner(strings.NewReader(r.out))
	for sc.Scan() {
		var e failedEvent
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event == "failed" {
			if e.Reason == "" || !strings.Contains(r.err, e.Reason) {
				c.t.Errorf("call from %s to %s: reason %q, error printed %q", dev, to, e.Reason, r.err)
			}
			return e
		}
	}
	c.t.Fatalf("call from %s to %s: no failed event: %s %s", dev, to, r.out, r.err)
	return failedEvent{}
}

// pathOf is the media path a call process reported last.
func pathOf(p *proc) string {
	path := ""
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	for sc.Scan() {
		var e struct {
			Event string `json:"event"`
			Path  string `json:"path"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && e.Event == "path" && e.Path != "" {
			path = e.Path
		}
	}
	return path
}

// calls returns the call events a listener saw.
func (l *listener) calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if e.Type == "call" {
			out = append(out, e.Peer+"/"+e.FromDevice+" "+e.State)
		}
	}
	return out
}

// TestCallThroughCluster: people call each other by address through
// phonexd; the node forks to the callee's devices, gates on contacts, and
// every way a call does not connect ends with a reason.
func TestCallThroughCluster(t *testing.T) {
	c := newCluster(t)
	c.n = serveOn(t, c.data, freeport.Addr(t), freeport.Addr(t))
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.device("bravo", "b2", false)
	c.device("charlie", "c1", true)
	c.device("mallory", "m1", true)
	for _, pair := range [][2]string{{"alpha", "bravo"}, {"alpha", "charlie"}, {"charlie", "bravo"}} {
		c.mustPx(pair[0]+"/"+pair[0][:1]+"1", "contacts", "add", pair[1]+"@example.org")
		c.mustPx(pair[1]+"/"+pair[1][:1]+"1", "contacts", "add", pair[0]+"@example.org")
	}
	c.mustPx("mallory/m1", "contacts", "add", "bravo@example.org") // one-sided
	tmp := c.tmp
	toneA, toneB := filepath.Join(tmp, "tone1000.wav"), filepath.Join(tmp, "tone600.wav")
	writeTone(t, toneA, 48000, 1000, 6)
	writeTone(t, toneB, 48000, 600, 6)
	recA, recB := filepath.Join(tmp, "heard-by-alpha.wav"), filepath.Join(tmp, "heard-by-bravo.wav")
	answer := func(dev string, args ...string) *proc {
		p := startPhonex(t, append([]string{"answer", "--json", "--profile", c.profile(dev), "--password-file", c.pw}, args...)...)
		p.waitEvent(t, "listening", 20*time.Second)
		return p
	}

	// bravo's first device answers, its second only listens: both ring,
	// the second stops ringing once the first answers.
	b2 := c.listen("bravo/b2")
	waitFor(t, "bravo/b2 ready", 20*time.Second, func() bool { return b2.first("ready").Type == "ready" })
	b1 := answer("bravo/b1", "--play", toneB, "--record", recB)
	a1 := startPhonex(t, "call", "bravo@example.org", "--json", "--play", toneA, "--record", recA,
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	talk(t, a1, b1, 3*time.Second)
	ea, eb := a1.wait(t, 40*time.Second), b1.wait(t, 40*time.Second)
	sa, sb := ea["secure"], eb["secure"]
	if sa.SAS == "" || sa.SAS != sb.SAS {
		t.Fatalf("SAS differ: caller %q callee %q", sa.SAS, sb.SAS)
	}
	if ea["ringing"].Event != "ringing" {
		t.Error("the caller saw no ringing")
	}
	if p := eb["connected"].Peer; p != "alpha@example.org/a1" {
		t.Errorf("the callee sees the caller as %q, want the node's assertion alpha@example.org/a1", p)
	}
	if f := dominant(t, recA); f < 590 || f > 610 {
		t.Errorf("alpha heard %.1f Hz, want bravo's 600 Hz", f)
	}
	if f := dominant(t, recB); f < 990 || f > 1010 {
		t.Errorf("bravo heard %.1f Hz, want alpha's 1000 Hz", f)
	}
	// The media takes the ICE path, as in a direct call: on one host,
	// the host candidates.
	if p := pathOf(a1); p != "host" {
		t.Errorf("media path through the cluster on loopback: %q, want host", p)
	}
	t.Logf("through the cluster: SAS %s, %s; alpha heard %.0f Hz, bravo heard %.0f Hz", sa.SAS, sa.KeyAgreement, dominant(t, recA), dominant(t, recB))
	waitFor(t, "bravo/b2 to stop ringing", 30*time.Second, func() bool {
		return strings.Join(b2.calls(), ",") == "alpha@example.org/a1 ringing,alpha@example.org/a1 answered_elsewhere"
	})

	// A stranger's call is refused before any device of bravo's rings.
	if e := c.callFails("mallory/m1", "bravo@example.org"); e.Cause != "not_contact" {
		t.Errorf("non-contact: %+v", e)
	}
	if e := c.callFails("mallory/m1", "nobody@example.org"); e.Cause != "not_contact" {
		t.Errorf("unknown address: %+v (must look like a non-contact)", e)
	}
	if got := b2.calls(); len(got) != 2 {
		t.Errorf("bravo/b2 saw calls from a stranger: %v", got)
	}

	// charlie has no device online.
	if e := c.callFails("alpha/a1", "charlie@example.org"); e.Cause != "offline" {
		t.Errorf("offline: %+v", e)
	}

	// Nobody answers: bravo/b2 rings until the caller gives up; it shows
	// as missed.
	if e := c.callFails("alpha/a1", "bravo@example.org", "--ring-for", "2s"); e.Cause != "no_answer" {
		t.Errorf("no answer: %+v", e)
	}
	waitFor(t, "bravo/b2 to show a missed call", 30*time.Second, func() bool {
		got := b2.calls()
		return len(got) == 4 && got[3] == "alpha@example.org/a1 missed"
	})

	// Declined on one device: the caller is told, the other stops ringing.
	dec := answer("bravo/b1", "--decline")
	if e := c.callFails("alpha/a1", "bravo@example.org"); e.Cause != "declined" {
		t.Errorf("declined: %+v", e)
	}
	if err := <-dec.done; err != nil {
		t.Errorf("answer --decline: %v %s", err, dec.stderr.String())
	}
	b2.stop()

	// Busy: bravo is in a call with alpha when charlie calls. The call
	// lasts until charlie has been refused, however long charlie's call
	// takes to set up, and alpha then hangs up (Ctrl-C).
	b1 = answer("bravo/b1", "--for", "120s")
	a1 = startPhonex(t, "call", "bravo@example.org", "--json", "--for", "120s", "--no-opus",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	a1.waitEvent(t, "secure", 20*time.Second)
	if e := c.callFails("charlie/c1", "bravo@example.org"); e.Cause != "busy" {
		t.Errorf("busy: %+v", e)
	}
	if err := a1.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	a1.wait(t, 20*time.Second)
	b1.wait(t, 20*time.Second)

	// --device rings only the named device.
	b2only := c.listen("bravo/b2")
	waitFor(t, "bravo/b2 ready", 20*time.Second, func() bool { return b2only.first("ready").Type == "ready" })
	b1 = answer("bravo/b1", "--for", "3s")
	if e := c.callFails("alpha/a1", "bravo@example.org", "--device", "b2", "--ring-for", "2s"); e.Cause != "no_answer" {
		t.Errorf("--device b2: %+v", e)
	}
	if strings.Contains(b1.out.String(), `"connected"`) {
		t.Error("--device b2 rang b1 as well")
	}
	// The listener reports the missed call once the node's CANCEL reaches
	// it, which may be after the caller has given up.
	want := "alpha@example.org/a1 ringing,alpha@example.org/a1 missed"
	deadline := time.Now().Add(15 * time.Second)
	for strings.Join(b2only.calls(), ",") != want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := strings.Join(b2only.calls(), ","); got != want {
		t.Errorf("--device b2: bravo/b2 saw %q, want %q", got, want)
	}
}

// TestLinphonecThroughCluster: a standard phone (linphonec) registered to
// phonexd with digest credentials over TLS calls a PhoneX user by address
// and is called by one; ZRTP runs end to end, the SAS is equal and audio
// crosses both ways.
func TestLinphonecThroughCluster(t *testing.T) {
	requirePeer(t, "linphonec")
	c := newCluster(t)
	c.n = serve(t, c.data)
	if c.n.phones == "" {
		t.Fatal("phonexd printed no phone listener line")
	}
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	cred := decode[sipDevice](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "bravo@example.org", "--name", "desk", "--json"))
	tmp := c.tmp
	tone440, tone660 := filepath.Join(tmp, "tone440.wav"), filepath.Join(tmp, "tone660.wav")
	writeTone(t, tone440, 16000, 440, 8)
	writeTone(t, tone660, 8000, 660, 20)
	// The phone as add-sip describes it: the phone port, the account's
	// user as login, the cluster CA trusted.
	rc := strings.Replace(phoneRC, "%s", filepath.Join(c.data, "ca.pem"), 1) +
		fmt.Sprintf(phoneAccountRC, cred.Registrar, cred.Registrar, cred.Identity, cred.Username, cred.Password, cred.Realm, cred.Realm)
	lp := startPhone(t, filepath.Join(tmp, "lp"), rc)
	if !lp.logMatch(`to \[LinphoneRegistrationOk\]`, 30*time.Second) {
		t.Fatalf("linphonec did not register; output:\n%s", lp.output())
	}
	m := lp.mark()
	lp.send("soundcard use files")
	lp.waitFor(m, `Using wav files`, 20*time.Second)

	check := func(dir string, mark int, ev map[string]callEvent, lpRec, ourRec string) {
		t.Helper()
		lpSAS := lp.waitFor(mark, sasRE, 30*time.Second)[1]
		if sec := ev["secure"]; !sameSAS(sec.SAS, lpSAS) {
			t.Errorf("%s: SAS phonex %q linphonec %q", dir, sec.SAS, lpSAS)
		}
		lp.waitFor(mark, `ended`, 15*time.Second)
		time.Sleep(500 * time.Millisecond)
		if f := dominant(t, lpRec); f < 430 || f > 450 {
			t.Errorf("%s: linphonec recorded %.1f Hz, want 440", dir, f)
		}
		if f := dominant(t, ourRec); f < 650 || f > 670 {
			t.Errorf("%s: phonex recorded %.1f Hz, want 660", dir, f)
		}
		t.Logf("%s: SAS %s (%s), codec %s, peer %s", dir, ev["secure"].SAS, ev["secure"].KeyAgreement, ev["connected"].Codec, ev["connected"].Peer)
	}

	// alpha calls bravo: the phone rings and answers.
	lp.send("autoanswer enable")
	lpRec, ourRec := filepath.Join(tmp, "lp1.wav"), filepath.Join(tmp, "px1.wav")
	lp.send("play " + tone660)
	lp.send("record " + lpRec)
	mark := lp.mark()
	out := startPhonex(t, "call", "bravo@example.org", "--play", tone440, "--record", ourRec, "--json",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	hangUpAfter(t, out, 3*time.Second)
	ev := out.wait(t, 40*time.Second)
	check("phonex -> linphonec through phonexd", mark, ev, lpRec, ourRec)

	// The phone calls alpha by address.
	lpRec, ourRec = filepath.Join(tmp, "lp2.wav"), filepath.Join(tmp, "px2.wav")
	ans := startPhonex(t, "answer", "--play", tone440, "--record", ourRec, "--json",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	ans.waitEvent(t, "listening", 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	lp.send("play " + tone660)
	lp.send("record " + lpRec)
	mark = lp.mark()
	lp.send("call sip:alpha@example.org")
	hangUpAfter(t, ans, 3*time.Second)
	ev = ans.wait(t, 40*time.Second)
	if p := ev["connected"].Peer; p != "bravo@example.org/desk" {
		t.Errorf("the phone's call shows as from %q, want the node's assertion bravo@example.org/desk", p)
	}
	check("linphonec -> phonex through phonexd", mark, ev, lpRec, ourRec)
}

// TestCallByAddressRelay: a call by address through the node with
// --relay takes the cluster's TURN relay with credentials the caller
// fetches itself; the signalling goes through the node, the media through
// the relay, end to end encrypted (equal SAS, the tone crosses).
func TestCallByAddressRelay(t *testing.T) {
	c := newCluster(t)
	c.configure("relay_addr = 127.0.0.1:0", "relay_tls_addr = ")
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	tone := filepath.Join(c.tmp, "tone440.wav")
	writeTone(t, tone, 16000, 440, 6)
	rec := filepath.Join(c.tmp, "heard-by-bravo.wav")
	ans := startPhonex(t, "answer", "--json", "--record", rec, "--profile", c.profile("bravo/b1"), "--password-file", c.pw)
	ans.waitEvent(t, "listening", 20*time.Second)
	call := startPhonex(t, "call", "bravo@example.org", "--relay", "--json", "--play", tone,
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	talk(t, call, ans, 3*time.Second)
	a, b := call.wait(t, 40*time.Second), ans.wait(t, 40*time.Second)
	if a["secure"].SAS == "" || a["secure"].SAS != b["secure"].SAS {
		t.Fatalf("SAS %q and %q", a["secure"].SAS, b["secure"].SAS)
	}
	for who, p := range map[string]*proc{"caller": call, "callee": ans} {
		if path, endPath, _ := pathEvents(t, p); path != "relay" || endPath != "relay" {
			t.Errorf("%s: path %q, end-of-call path %q, want relay\n%s", who, path, endPath, p.out.String())
		}
	}
	if f := dominant(t, rec); f < 435 || f > 445 {
		t.Errorf("bravo heard %.1f Hz, want 440", f)
	}
}
