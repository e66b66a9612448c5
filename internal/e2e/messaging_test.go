package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/phonex/phonex/internal/freeport"
)

// cluster is a node with enrolled devices, driven through the binaries.
type cluster struct {
	t    *testing.T
	tmp  string
	data string
	n    *node
	pw   string
}

func newCluster(t *testing.T) *cluster {
	tmp := t.TempDir()
	c := &cluster{t: t, tmp: tmp, data: filepath.Join(tmp, "data"), pw: filepath.Join(tmp, "pw")}
	os.WriteFile(c.pw, []byte("messaging password\n"), 0o600)
	mustRun(t, nil, "phonexd", "init", "--data", c.data, "--domain", "example.org", "--host", "127.0.0.1")
	return c
}

func (c *cluster) profile(dev string) string {
	return filepath.Join(c.tmp, strings.ReplaceAll(dev, "/", "_"))
}

// device enrolls user/dev (the first device of an account) or logs it in.
func (c *cluster) device(user, dev string, first bool) {
	c.t.Helper()
	if first {
		act := decode[map[string]string](c.t, mustRun(c.t, nil, "phonexd", "user", "add", "--data", c.data, user+"@example.org", "--json"))
		mustRun(c.t, nil, "phonex", "enroll", user+"@example.org", "--profile", c.profile(user+"/"+dev), "--server", c.n.api,
			"--ca-file", filepath.Join(c.data, "ca.pem"), "--code", act["code"], "--device", dev, "--password-file", c.pw)
		return
	}
	mustRun(c.t, nil, "phonex", "login", user+"@example.org", "--profile", c.profile(user+"/"+dev), "--server", c.n.api,
		"--ca-file", filepath.Join(c.data, "ca.pem"), "--device", dev, "--password-file", c.pw)
}

func (c *cluster) px(dev string, args ...string) result {
	return run(c.t, nil, "phonex", append(args, "--profile", c.profile(dev), "--password-file", c.pw)...)
}

func (c *cluster) mustPx(dev string, args ...string) string {
	c.t.Helper()
	r := c.px(dev, args...)
	if r.code != 0 {
		c.t.Fatalf("phonex %v on %s: exit %d: %s", args, dev, r.code, r.err)
	}
	return r.out
}

type event struct {
	Type       string `json:"type"`
	From       string `json:"from"`
	FromDevice string `json:"from_device"`
	Peer       string `json:"peer"`
	ID         string `json:"id"`
	Text       string `json:"text"`
	Outgoing   bool   `json:"outgoing"`
	Insecure   bool   `json:"insecure"`
	Protocol   string `json:"protocol"`
	State      string `json:"state"`
}

// listener is a running 'phonex listen --json'.
type listener struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []event
	stderr bytes.Buffer
}

func (c *cluster) listen(dev string) *listener {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "phonex"), "listen", "--json", "--profile", c.profile(dev), "--password-file", c.pw)
	out, _ := cmd.StdoutPipe()
	l := &listener{cmd: cmd}
	cmd.Stderr = &l.stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				l.mu.Lock()
				l.events = append(l.events, e)
				l.mu.Unlock()
			}
		}
	}()
	c.t.Cleanup(l.stop)
	return l
}

func (l *listener) stop() {
	if l.cmd.ProcessState == nil {
		l.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { l.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			l.cmd.Process.Kill()
		}
	}
}

// texts returns the texts of message events matching f, in arrival order.
func (l *listener) texts(f func(event) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.events {
		if e.Type == "message" && f(e) {
			out = append(out, e.Text)
		}
	}
	return out
}

// first returns the first event of type typ.
func (l *listener) first(typ string) event {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Type == typ {
			return e
		}
	}
	return event{}
}

func (l *listener) has(typ, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Type == typ && e.ID == id {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, d time.Duration, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func all(event) bool { return true }

type sendOutcome struct {
	text string
	code int
	err  string
}

func (c *cluster) sendOutcome(dev, to, text string) sendOutcome {
	r := c.px(dev, "send", to, text)
	return sendOutcome{text, r.code, r.err}
}

func TestMessaging(t *testing.T) {
	c := newCluster(t)
	apiAddr, sipAddr := freeport.Addr(t), freeport.Addr(t)
	c.n = serveOn(t, c.data, apiAddr, sipAddr)
	c.device("alpha", "a1", true)
	c.device("alpha", "a2", false)
	c.device("bravo", "b1", true)
	c.device("bravo", "b2", false)
	c.device("carol", "c1", true)
	c.mustPx("alpha/a1", "contacts", "add", "bravo@example.org")
	c.mustPx("bravo/b1", "contacts", "add", "alpha@example.org")
	c.mustPx("carol/c1", "contacts", "add", "bravo@example.org") // bravo does not list carol

	b1 := c.listen("bravo/b1")
	waitFor(t, "b1 registered", 30*time.Second, func() bool { return b1.has("ready", "") })
	sent := decode[map[string]string](t, c.mustPx("alpha/a1", "send", "bravo@example.org", "first, online", "--json"))
	id1 := sent["id"]
	waitFor(t, "online delivery", 30*time.Second, func() bool { return len(b1.texts(all)) == 1 })
	if e := b1.first("message"); e.From != "alpha@example.org" || e.FromDevice != "a1" || e.ID != id1 || e.Text != "first, online" || e.Protocol != "ratchet" {
		t.Fatalf("online message event: %+v", e)
	}

	// b2 is offline: three more messages wait on the cluster for it.
	for _, s := range []string{"second, waiting", "third, waiting", "fourth, waiting"} {
		c.mustPx("alpha/a1", "send", "bravo@example.org", s)
	}
	waitFor(t, "b1 gets all four", 30*time.Second, func() bool { return len(b1.texts(all)) == 4 })
	b2 := c.listen("bravo/b2")
	want := []string{"first, online", "second, waiting", "third, waiting", "fourth, waiting"}
	waitFor(t, "offline delivery to b2", 15*time.Second, func() bool { return len(b2.texts(all)) == 4 })
	if got := b2.texts(all); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("b2 got %q, want %q in order", got, want)
	}
	// The sender's other device shows the conversation too.
	a2 := c.listen("alpha/a2")
	waitFor(t, "sender copies on a2", 15*time.Second, func() bool { return len(a2.texts(func(e event) bool { return e.Outgoing })) == 4 })
	// The sending device gets the delivery receipts.
	a1 := c.listen("alpha/a1")
	waitFor(t, "delivery receipt", 15*time.Second, func() bool { return a1.has("delivered", id1) })
	c.mustPx("bravo/b1", "read", "alpha@example.org")
	waitFor(t, "read receipt", 15*time.Second, func() bool { return a1.has("read", id1) })
	inbox := decode[[]map[string]any](t, c.mustPx("alpha/a1", "inbox", "--with", "bravo@example.org", "--json"))
	if len(inbox) != 4 || inbox[0]["state"] != "read" {
		t.Fatalf("sender inbox: %v", inbox)
	}
	binbox := decode[[]map[string]any](t, c.mustPx("bravo/b1", "inbox", "--json"))
	if len(binbox) != 4 || binbox[3]["text"] != "fourth, waiting" || binbox[0]["state"] != "seen" {
		t.Fatalf("recipient inbox: %v", binbox)
	}

	// A non-contact is refused and the cluster stores nothing of it.
	r := c.px("carol/c1", "send", "bravo@example.org", "let me in")
	if r.code == 0 || !strings.Contains(r.err, "not allowed") {
		t.Fatalf("non-contact: exit %d %q", r.code, r.err)
	}
	// One-sided the other way: carol lists bravo, bravo has not listed
	// carol, so carol's device could not read bravo's keys. Refused, never
	// reported as sent.
	r = c.px("bravo/b1", "send", "carol@example.org", "one-sided")
	if r.code == 0 || !strings.Contains(r.err, "you have not added") {
		t.Fatalf("one-sided send: exit %d %q", r.code, r.err)
	}
	// A text that cannot fit in one SIP MESSAGE fails at once, not queued.
	noise := make([]byte, 75000)
	rand.Read(noise)
	r = c.px("alpha/a1", "send", "bravo@example.org", base64.StdEncoding.EncodeToString(noise))
	if r.code == 0 || !strings.Contains(r.err, "message too large") || strings.Contains(r.err, "retry") {
		t.Fatalf("oversized send: exit %d %q", r.code, r.err)
	}
	// A second listener on a listening profile is refused, not left to
	// take the first one's messages.
	r = c.px("bravo/b1", "listen", "--for", "10s")
	if r.code == 0 || !strings.Contains(r.err, "already listening") {
		t.Fatalf("second listen: exit %d %q", r.code, r.err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.data, "phonexd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM messages WHERE sender='carol@example.org' OR recipient='carol@example.org'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("stored messages from a non-contact: %d (%v)", n, err)
	}

	// kill -9 with messages accepted but not delivered: every device of
	// bravo and alpha's other device are offline, so the node holds the only
	// copies. Each acknowledged message (send exited 0: the node answered
	// 200) must reach bravo exactly once after the restart; so must each
	// one the device queued across the kill (send reported a retry).
	a1.stop()
	a2.stop()
	b1.stop()
	b2.stop()
	const before = 8
	var outs []sendOutcome
	for i := 0; i < before; i++ {
		outs = append(outs, c.sendOutcome("alpha/a1", "bravo@example.org", fmt.Sprintf("stream %02d", i)))
	}
	acked := 0
	for _, o := range outs {
		if o.code != 0 {
			t.Fatalf("send %q before the kill: exit %d: %s", o.text, o.code, o.err)
		}
		acked++
	}
	db, err = sql.Open("sqlite", "file:"+filepath.Join(c.data, "phonexd.db")+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	var waiting int
	if err := db.QueryRow(`SELECT COUNT(*) FROM deliveries d JOIN devices v ON v.id=d.device_id WHERE v.name='b1'`).Scan(&waiting); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if waiting < before {
		t.Fatalf("before the kill the node holds %d copies for b1, want at least the %d acknowledged", waiting, before)
	}
	// More sends run while the node is killed.
	const during = 6
	var omu sync.Mutex
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := before; i < before+during; i++ {
			o := c.sendOutcome("alpha/a1", "bravo@example.org", fmt.Sprintf("stream %02d", i))
			omu.Lock()
			outs = append(outs, o)
			omu.Unlock()
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	c.n.cmd.Process.Kill()
	c.n.cmd.Wait()
	time.Sleep(1500 * time.Millisecond)
	c.n = serveOn(t, c.data, apiAddr, sipAddr)
	wg.Wait()
	var expect []string
	for _, o := range outs {
		switch {
		case o.code == 0, strings.Contains(o.err, "will retry"), strings.Contains(o.err, "queued, not sent"):
			expect = append(expect, o.text)
		case strings.Contains(o.err, "cannot reach the server"):
		default:
			t.Errorf("send %q: exit %d: %s", o.text, o.code, o.err)
		}
	}
	t.Logf("%d acknowledged with every recipient device offline before the kill; %d of %d more accepted or queued across it", acked, len(expect)-acked, during)
	// The recipient comes back; a listening sender drains its queue.
	b1 = c.listen("bravo/b1")
	a1 = c.listen("alpha/a1")
	isStream := func(e event) bool { return strings.HasPrefix(e.Text, "stream ") }
	deadline := time.Now().Add(60 * time.Second)
	for len(b1.texts(isStream)) < len(expect) {
		if time.Now().After(deadline) {
			t.Fatalf("after restart b1 shows %q, want %q\nsends %+v\nb1 stderr %s\na1 stderr %s", b1.texts(isStream), expect, outs, b1.stderr.String(), a1.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // duplicates would show up now
	got := b1.texts(isStream)
	seen := map[string]int{}
	for _, s := range got {
		seen[s]++
	}
	for _, s := range expect {
		if seen[s] != 1 {
			t.Errorf("%q shown %d times; got %q", s, seen[s], got)
		}
	}
	if len(got) != len(expect) {
		t.Errorf("b1 shows %q, want exactly %q", got, expect)
	}
	// The acknowledged ones came first and in order.
	for i := 0; i < before; i++ {
		if want := fmt.Sprintf("stream %02d", i); got[i] != want {
			t.Errorf("b1 message %d is %q, want %q", i, got[i], want)
		}
	}
	var stream []string
	for _, o := range outs {
		stream = append(stream, o.text)
	}
	c.n.stop(t)

	// The node's database and logs never held a message's text.
	raw, _ := os.ReadFile(filepath.Join(c.data, "phonexd.db"))
	wal, _ := os.ReadFile(filepath.Join(c.data, "phonexd.db-wal"))
	for _, s := range append(want, stream...) {
		if bytes.Contains(raw, []byte(s)) || bytes.Contains(wal, []byte(s)) || bytes.Contains(c.n.logs.Bytes(), []byte(s)) {
			t.Errorf("%q found in the node's database or log", s)
		}
	}
}
