package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	c.n = serveOn(t, c.data, freeAddr(t), freeAddr(t))
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
	b1 := answer("bravo/b1", "--play", toneB, "--record", recB, "--for", "6s")
	a1 := startPhonex(t, "call", "bravo@example.org", "--json", "--play", toneA, "--record", recA, "--for", "4s",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
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
	t.Logf("through the cluster: SAS %s, %s; alpha heard %.0f Hz, bravo heard %.0f Hz", sa.SAS, sa.KeyAgreement, dominant(t, recA), dominant(t, recB))
	waitFor(t, "bravo/b2 to stop ringing", 10*time.Second, func() bool {
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
	waitFor(t, "bravo/b2 to show a missed call", 10*time.Second, func() bool {
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

	// Busy: bravo is in a call with alpha when charlie calls.
	b1 = answer("bravo/b1", "--for", "8s")
	a1 = startPhonex(t, "call", "bravo@example.org", "--json", "--for", "6s", "--no-opus",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	a1.waitEvent(t, "secure", 20*time.Second)
	if e := c.callFails("charlie/c1", "bravo@example.org"); e.Cause != "busy" {
		t.Errorf("busy: %+v", e)
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
	if got := b2only.calls(); len(got) != 2 {
		t.Errorf("--device b2: bravo/b2 saw %v", got)
	}
}

// linphoneRegisteredRC is a linphonec that registers to phonexd over TLS
// with the digest credentials of 'phonexd device add-sip' (the login name
// as userid, the account's user as username).
const linphoneRegisteredRC = `[sip]
root_ca=%s
default_proxy=0
bind_address=127.0.0.1
sip_port=-1
sip_tcp_port=-1
sip_tls_port=-1
use_ipv6=0
ipv6_migration_done=1
media_encryption=zrtp
media_encryption_mandatory=1
verify_server_certs=1
verify_server_cn=0
guess_hostname=0
inc_timeout=60

[rtp]
bind_address=127.0.0.1
audio_rtp_port=%d
video_rtp_port=%d
text_rtp_port=%d

[sound]
echocancellation=0

[video]
display=0
capture=0
automatically_initiate=0
automatically_accept=0

[proxy_0]
reg_proxy=<sip:%s;transport=tls>
reg_route=<sip:%s;transport=tls;lr>
reg_identity=<sip:%s>
reg_expires=600
reg_sendregister=1
publish=0

[auth_info_0]
username=%s
userid=%s
passwd=%s
realm=example.org
domain=example.org
`

// startLinphonecRegistered starts linphonec registered to the node as a
// standard phone of account (user@example.org).
func startLinphonecRegistered(t *testing.T, home, caFile, sipAddr, account string, cred map[string]string) *linphonec {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(home, ".local", "share", "linphone"), 0o700); err != nil {
		t.Fatal(err)
	}
	rtp := freePort(t)
	user, _, _ := strings.Cut(account, "@")
	rc := filepath.Join(home, "rc")
	if err := os.WriteFile(rc, fmt.Appendf(nil, linphoneRegisteredRC, caFile, rtp, rtp+2, rtp+4, sipAddr, sipAddr, account,
		user, cred["username"], cred["password"]), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &linphonec{t: t, home: home, done: make(chan struct{})}
	l.cmd = exec.Command("linphonec", "-c", rc, "-a", "-d", "6", "-l", filepath.Join(home, "debug.log"))
	l.cmd.Dir = home
	l.cmd.Env = append(os.Environ(), "HOME="+home)
	var err error
	if l.in, err = l.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	l.cmd.Stdout, l.cmd.Stderr = pw, pw
	if err := l.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			l.mu.Lock()
			l.out.WriteString(sc.Text() + "\n")
			l.mu.Unlock()
		}
	}()
	go func() { l.cmd.Wait(); pw.Close(); close(l.done) }()
	t.Cleanup(l.quit)
	// The node's TLS listener asks every client for a certificate, and
	// linphonec then waits at a password prompt ("Password for (null)")
	// that takes any non-empty line (an empty one prompts again): a line
	// is sent until the registration succeeds (at the command prompt it
	// is only an unknown command).
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(l.debugLog(), "to [LinphoneRegistrationOk]") {
		if time.Now().After(deadline) {
			log := l.debugLog()
			t.Fatalf("linphonec did not register to phonexd:\n%s\ndebug log tail:\n%s", l.output(), log[max(0, len(log)-6000):])
		}
		l.send("none")
		time.Sleep(500 * time.Millisecond)
	}
	m := l.mark()
	l.send("soundcard use files")
	l.waitFor(m, `Using wav files`, 20*time.Second)
	return l
}

// TestLinphonecThroughCluster: a standard phone (linphonec) registered to
// phonexd with digest credentials over TLS calls a PhoneX user by address
// and is called by one; ZRTP runs end to end, the SAS is equal and audio
// crosses both ways.
func TestLinphonecThroughCluster(t *testing.T) {
	requirePeer(t, "linphonec")
	c := newCluster(t)
	sipAddr := freeAddr(t)
	c.n = serveOn(t, c.data, freeAddr(t), sipAddr)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	cred := decode[map[string]string](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "bravo@example.org", "--name", "desk", "--json"))
	tmp := c.tmp
	tone440, tone660 := filepath.Join(tmp, "tone440.wav"), filepath.Join(tmp, "tone660.wav")
	writeTone(t, tone440, 16000, 440, 8)
	writeTone(t, tone660, 8000, 660, 20)
	lp := startLinphonecRegistered(t, filepath.Join(tmp, "lp"), filepath.Join(c.data, "ca.pem"), sipAddr, "bravo@example.org", cred)

	check := func(dir string, mark int, ev map[string]callEvent, lpRec, ourRec string) {
		t.Helper()
		lpSAS := lp.waitFor(mark, sasRE, 10*time.Second)[1]
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
	ev := startPhonex(t, "call", "bravo@example.org", "--play", tone440, "--record", ourRec, "--for", "5s", "--json",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw).wait(t, 40*time.Second)
	check("phonex -> linphonec through phonexd", mark, ev, lpRec, ourRec)

	// The phone calls alpha by address.
	lpRec, ourRec = filepath.Join(tmp, "lp2.wav"), filepath.Join(tmp, "px2.wav")
	ans := startPhonex(t, "answer", "--play", tone440, "--record", ourRec, "--for", "5s", "--json",
		"--profile", c.profile("alpha/a1"), "--password-file", c.pw)
	ans.waitEvent(t, "listening", 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	lp.send("play " + tone660)
	lp.send("record " + lpRec)
	mark = lp.mark()
	lp.send("call sip:alpha@example.org")
	ev = ans.wait(t, 40*time.Second)
	if p := ev["connected"].Peer; p != "bravo@example.org/desk" {
		t.Errorf("the phone's call shows as from %q, want the node's assertion bravo@example.org/desk", p)
	}
	check("linphonec -> phonex through phonexd", mark, ev, lpRec, ourRec)
}
