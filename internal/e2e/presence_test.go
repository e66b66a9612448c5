package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/freeport"
)

// presenceEvent is one line of 'phonex listen --json' with its presence.
type presenceEvent struct {
	Type       string          `json:"type"`
	Peer       string          `json:"peer"`
	FromDevice string          `json:"from_device"`
	Presence   json.RawMessage `json:"presence"`
}

type shown struct {
	State   string   `json:"state"`
	Note    string   `json:"note"`
	Devices []string `json:"devices"`
}

func (s shown) String() string { return fmt.Sprintf("%s %q %v", s.State, s.Note, s.Devices) }

// watcherProc is a running 'phonex listen --json' whose events are kept.
type watcherProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []presenceEvent
	stderr bytes.Buffer
}

func (c *cluster) watch(dev string) *watcherProc {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "phonex"), "listen", "--json", "--profile", c.profile(dev), "--password-file", c.pw)
	out, _ := cmd.StdoutPipe()
	w := &watcherProc{cmd: cmd}
	cmd.Stderr = &w.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e presenceEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				w.mu.Lock()
				w.events = append(w.events, e)
				w.mu.Unlock()
			}
		}
	}()
	c.t.Cleanup(func() { w.stop(syscall.SIGTERM) })
	return w
}

func (w *watcherProc) stop(sig syscall.Signal) {
	if w.cmd.ProcessState != nil {
		return
	}
	w.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { w.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		w.cmd.Process.Kill()
		<-done
	}
}

// of returns what the watcher was shown of peer, in order.
func (w *watcherProc) of(peer string) []shown {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []shown
	for _, e := range w.events {
		if e.Type == "presence" && e.Peer == peer {
			var s shown
			json.Unmarshal(e.Presence, &s)
			out = append(out, s)
		}
	}
	return out
}

func (w *watcherProc) raw(peer string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, e := range w.events {
		if e.Type == "presence" && e.Peer == peer {
			out = append(out, string(e.Presence))
		}
	}
	return out
}

func (w *watcherProc) has(typ, peer, device string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.Type == typ && e.Peer == peer && e.FromDevice == device {
			return true
		}
	}
	return false
}

// waitShows waits until the last thing w was shown of peer is want.
func (w *watcherProc) waitShows(t *testing.T, peer, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, fmt.Sprintf("%s shown as %s (shown: %v)", peer, want, w.of(peer)), within, func() bool {
		s := w.of(peer)
		return len(s) > 0 && s[len(s)-1].String() == want
	})
	return time.Since(start)
}

// TestPresence: two accounts with two devices each see each other's
// presence through phonexd and the phonex binary, in order; invisible is
// offline; a killed device goes offline within the bound; a new device of
// a contact is announced at once; a non-contact learns nothing.
func TestPresence(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	c.device("alpha", "a2", false)
	c.device("bravo", "b1", true)
	c.device("bravo", "b2", false)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	c.mustPx("bravo/b2", "contacts") // pins alpha's devices on b2 too

	const alpha = "alpha@example.org"
	a1 := c.watch("alpha/a1")
	waitFor(t, "a1 ready", 20*time.Second, func() bool { return a1.has("ready", "", "") })
	b1, b2 := c.watch("bravo/b1"), c.watch("bravo/b2")
	for _, b := range []*watcherProc{b1, b2} {
		b.waitShows(t, alpha, `online "" [a1]`, 20*time.Second)
	}
	// alpha sees bravo too.
	a1.waitShows(t, "bravo@example.org", `online "" [b1 b2]`, 20*time.Second)

	steps := []struct {
		dev  string
		args []string
		want string
	}{
		{"alpha/a1", []string{"presence", "set", "away", "--note", "lunch"}, `away "lunch" [a1]`},
		{"alpha/a2", nil, `online "" [a1 a2]`}, // a2 starts listening: the most available wins
		{"alpha/a2", []string{"presence", "set", "dnd"}, `away "lunch" [a1 a2]`},
		{"alpha/a1", []string{"presence", "set", "busy", "--note", "meeting"}, `busy "meeting" [a1 a2]`},
	}
	var a2 *watcherProc
	var want []string
	for _, s := range steps {
		if s.args == nil {
			a2 = c.watch(s.dev)
		} else {
			c.mustPx(s.dev, s.args...)
		}
		want = append(want, s.want)
		for _, b := range []*watcherProc{b1, b2} {
			b.waitShows(t, alpha, s.want, 20*time.Second)
		}
	}
	// In order, each change once.
	for _, b := range []*watcherProc{b1, b2} {
		var got []string
		for _, s := range b.of(alpha)[1:] {
			got = append(got, s.String())
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Fatalf("changes seen:\n%q\nwant\n%q", got, want)
		}
	}
	// phonex presence: own state per device, as the account's devices see it.
	own := decode[struct {
		State   string  `json:"state"`
		Note    string  `json:"note"`
		Devices []shown `json:"devices"`
	}](t, c.mustPx("alpha/a1", "presence", "--json"))
	if own.State != "busy" || own.Note != "meeting" || len(own.Devices) != 2 {
		t.Fatalf("phonex presence: %+v", own)
	}
	// phonex contacts shows presence beside the trust information.
	cs := decode[[]struct {
		User     string `json:"user"`
		Devices  []any  `json:"devices"`
		Presence *shown `json:"presence"`
	}](t, c.mustPx("bravo/b1", "contacts", "--json"))
	if len(cs) != 1 || cs[0].Presence == nil || cs[0].Presence.String() != `busy "meeting" [a1 a2]` || len(cs[0].Devices) != 2 {
		t.Fatalf("contacts: %+v", cs)
	}

	// Invisible on both devices is exactly what offline is.
	c.mustPx("alpha/a1", "presence", "set", "invisible")
	c.mustPx("alpha/a2", "presence", "set", "invisible")
	b1.waitShows(t, alpha, `offline "" []`, 20*time.Second)
	invisible := b1.raw(alpha)[len(b1.raw(alpha))-1]
	// Still reachable: a message gets through.
	c.mustPx("bravo/b1", "send", alpha, "are you there?")
	waitFor(t, "message to an invisible account", 20*time.Second, func() bool {
		a1.mu.Lock()
		defer a1.mu.Unlock()
		for _, e := range a1.events {
			if e.Type == "message" {
				return true
			}
		}
		return false
	})
	c.mustPx("alpha/a1", "presence", "set", "online")
	c.mustPx("alpha/a2", "presence", "set", "online")
	b1.waitShows(t, alpha, `online "" [a1 a2]`, 20*time.Second)

	// A device whose listen is killed goes offline within the bound (60 s).
	a2.stop(syscall.SIGKILL)
	took := b1.waitShows(t, alpha, `online "" [a1]`, 60*time.Second)
	t.Logf("a killed device shown offline after %v", took.Round(100*time.Millisecond))
	a1.stop(syscall.SIGTERM)
	b1.waitShows(t, alpha, `offline "" []`, 20*time.Second)
	if offline := b1.raw(alpha)[len(b1.raw(alpha))-1]; offline != invisible {
		t.Fatalf("invisible showed %s, offline shows %s", invisible, offline)
	}

	// A new device of a contact is announced at once, before any message.
	c.device("alpha", "a3", false)
	c.watch("alpha/a3")
	b1.waitShows(t, alpha, `online "" [a3]`, 20*time.Second)
	waitFor(t, "new_device of alpha/a3 at b1", 40*time.Second, func() bool { return b1.has("new_device", alpha, "a3") })
}

// TestPresenceRefusedToNonContacts: a standard phone of an account that is
// no mutual contact subscribes to an existing account and to one that does
// not exist: the answers are the same.
func TestPresenceRefusedToNonContacts(t *testing.T) {
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "sippy@example.org")
	cred := decode[map[string]string](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "sippy@example.org", "--name", "desk", "--json"))
	s := c.mustDialSIP()
	subscribe := func(target string, cseq int, extra string) string {
		r := request("SUBSCRIBE", "sip:"+target, cseq, extra+"Event: presence\r\nAccept: application/pidf+xml\r\nExpires: 600\r\n"+
			"Contact: <sip:sippy@127.0.0.1:5999;transport=tls>\r\n", "")
		r = strings.Replace(r, "To: <sip:alpha@example.org>", "To: <sip:"+target+">", 1)
		return regexp.MustCompile(`Call-ID: \S+`).ReplaceAllString(r, "Call-ID: refused-"+target)
	}
	answer := func(target string, cseq int) string {
		s.send(subscribe(target, cseq, ""))
		ch := s.recv(3 * time.Second)
		if status(ch) != 401 {
			t.Fatalf("no challenge: %q", ch)
		}
		s.send(subscribe(target, cseq+1, digestAnswer(t, ch, cred["username"], cred["password"], "SUBSCRIBE", "sip:"+target, cseq)))
		res := s.recv(3 * time.Second)
		// What may differ: the transaction's own headers.
		var keep []string
		for _, l := range strings.Split(res, "\r\n") {
			name, _, _ := strings.Cut(l, ":")
			switch strings.ToLower(name) {
			case "via", "from", "to", "call-id", "cseq":
				continue
			}
			keep = append(keep, l)
		}
		return strings.Join(keep, "\r\n")
	}
	exists := answer("alpha@example.org", 1)
	missing := answer("nobody@example.org", 10)
	if exists != missing || status(exists) != 403 {
		t.Fatalf("answers differ or admit:\nexisting account:\n%s\nno such account:\n%s", exists, missing)
	}
	// And no NOTIFY follows.
	if extra := s.recv(time.Second); extra != "" {
		t.Fatalf("after a refusal: %q", extra)
	}
}

// TestPresenceAfterRestart: the node keeps no presence, so after a restart
// devices publish and subscribe again with their next registration; no
// one shows offline for longer than that.
func TestPresenceAfterRestart(t *testing.T) {
	c := newCluster(t)
	apiAddr, sipAddr := freeport.Addr(t), freeport.Addr(t)
	c.n = serveOn(t, c.data, apiAddr, sipAddr)
	c.device("alpha", "a1", true)
	c.device("bravo", "b1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	const alpha = "alpha@example.org"
	c.watch("alpha/a1")
	b1 := c.watch("bravo/b1")
	b1.waitShows(t, alpha, `online "" [a1]`, 20*time.Second)
	c.mustPx("alpha/a1", "presence", "set", "away")
	b1.waitShows(t, alpha, `away "" [a1]`, 20*time.Second)

	c.n.stop(t)
	c.n = serveOn(t, c.data, apiAddr, sipAddr)
	restarted := time.Now()
	seen := len(b1.of(alpha))
	// A change after the restart reaches the watcher once both devices
	// have registered again (within 15 s; every 2 s once a refresh
	// failed). The watcher shows the last state it had until then, unless
	// it subscribes again first and sees alpha offline until alpha is back.
	c.mustPx("alpha/a1", "presence", "set", "busy")
	deadline := time.Now().Add(40 * time.Second)
	for {
		s := b1.of(alpha)
		if len(s) > seen && s[len(s)-1].String() == `busy "" [a1]` {
			break
		}
		if time.Now().After(deadline) {
			b1.mu.Lock()
			t.Logf("b1 stderr: %s", b1.stderr.String())
			b1.mu.Unlock()
			t.Fatalf("presence not back after the restart (shown since: %v); node log:\n%s", s[seen:], c.n.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("presence back %v after the restart; shown meanwhile: %v", time.Since(restarted).Round(100*time.Millisecond), b1.of(alpha)[seen:])
}

// TestPresenceLinphonec: linphonec, a standard phone of an account that is
// a mutual contact of alpha, watches alpha through phonexd (its friend
// list, SUBSCRIBE with digest on the phone port) and sees alpha's PhoneX
// device come online and go offline; alpha sees the phone online.
func TestPresenceLinphonec(t *testing.T) {
	requirePeer(t, "linphonec")
	c := newCluster(t)
	c.n = serve(t, c.data)
	c.device("alpha", "a1", true)
	mustRun(t, nil, "phonexd", "user", "add", "--data", c.data, "carol@example.org")
	cred := decode[sipDevice](t, mustRun(t, nil, "phonexd", "device", "add-sip", "--data", c.data, "carol@example.org", "--name", "phone", "--json"))
	mustRun(t, nil, "phonexd", "contacts", "add", "--data", c.data, "carol@example.org", "alpha@example.org")
	c.mustPx("alpha/a1", "contacts", "add", "carol@example.org")

	home := filepath.Join(c.tmp, "lp-carol")
	rc := strings.Replace(phoneRC, "%s", filepath.Join(c.data, "ca.pem"), 1) +
		strings.Replace(fmt.Sprintf(phoneAccountRC, cred.Registrar, cred.Registrar, cred.Identity, cred.Username, cred.Password, cred.Realm, cred.Realm),
			"publish=0", "publish=1", 1) +
		"\n[friend_0]\nurl=\"Alpha\" <sip:alpha@example.org>\npol=accept\nsubscribe=1\n"
	lp := startPhone(t, home, rc)
	if !lp.logMatch(`LinphoneRegistrationOk`, 30*time.Second) {
		t.Fatalf("linphonec did not register:\n%s", lp.output())
	}
	// What linphonec prints when a friend's presence changes.
	status := func(want string) string { return `(?i)Friend .*alpha@example\.org.* is ` + want }
	mark := lp.mark()
	a1 := c.watch("alpha/a1")
	waitFor(t, "a1 ready", 20*time.Second, func() bool { return a1.has("ready", "", "") })
	if m := lp.waitFor(mark, status("online"), 30*time.Second); m == nil {
		t.Fatalf("linphonec did not see alpha online:\n%s", lp.since(mark))
	} else {
		t.Logf("linphonec: %s", m[0])
	}
	// And alpha sees the phone online, which published over digest too.
	a1.waitShows(t, "carol@example.org", `online "" [phone]`, 20*time.Second)
	if !lp.logMatch(`(?i)SIP-ETag: [0-9a-f]+`, 10*time.Second) {
		t.Error("linphonec's PUBLISH was not accepted")
	}
	mark = lp.mark()
	a1.stop(syscall.SIGTERM)
	if m := lp.waitFor(mark, status("offline"), 30*time.Second); m == nil {
		t.Fatalf("linphonec did not see alpha offline:\n%s", lp.since(mark))
	} else {
		t.Logf("linphonec: %s", m[0])
	}
}
