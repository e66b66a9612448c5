package client_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/server"
)

// login adds a further device to user.
func (c *cluster) login(user, device, pw string, suite keys.Suite) *client.Profile {
	c.t.Helper()
	req := client.EnrollRequest{Dir: filepath.Join(c.t.TempDir(), device), User: user, Device: device, Server: c.addr,
		Fingerprint: mustFP(c.t, c), Password: []byte(pw), Suite: suite, RSABits: 2048}
	p, err := client.Login(context.Background(), req, &client.Options{KDF: fastKDF, MinKDF: fastKDF})
	if err != nil {
		c.t.Fatalf("login %s/%s: %v", user, device, err)
	}
	return p
}

// withholdSignedPrekeys makes the cluster hand out no signed prekeys for a
// device, as a cluster that wants to force key slots would.
func (c *cluster) withholdSignedPrekeys(device string) {
	c.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.cfg.DataDir, server.DBFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		c.t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`DELETE FROM prekeys WHERE kind IN ('signed', 'pq-signed') AND device_id=(SELECT id FROM devices WHERE name=?)`, device)
	if n, _ := res.RowsAffected(); err != nil || n == 0 {
		c.t.Fatalf("withhold prekeys of %s: %v (%d rows)", device, err, n)
	}
}

// events collects what a profile emits, from Listen or SetEvents.
type events struct {
	mu  sync.Mutex
	all []client.Event
	ch  chan client.Event
}

func newEvents() *events { return &events{ch: make(chan client.Event, 256)} }

func (e *events) add(ev client.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
	e.ch <- ev
}

func (e *events) of(typ string) []client.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []client.Event
	for _, ev := range e.all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the first event matching f, or fails after d.
func (e *events) wait(t *testing.T, d time.Duration, what string, f func(client.Event) bool) client.Event {
	t.Helper()
	deadline := time.After(d)
	e.mu.Lock()
	for _, ev := range e.all {
		if f(ev) {
			e.mu.Unlock()
			return ev
		}
	}
	e.mu.Unlock()
	for {
		select {
		case ev := <-e.ch:
			if f(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s within %v; events: %+v", what, d, e.all)
		}
	}
}

// listen runs p.Listen until the test ends.
func listen(t *testing.T, p *client.Profile) *events {
	t.Helper()
	ev := newEvents()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Listen(ctx, ev.add) }()
	t.Cleanup(func() { cancel(); <-done })
	ev.wait(t, 30*time.Second, "registration", func(e client.Event) bool { return e.Type == "ready" })
	return ev
}

func contacts(t *testing.T, a, b *client.Profile, an, bn string) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.AddContact(ctx, bn); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddContact(ctx, an); err != nil {
		t.Fatal(err)
	}
}

func message(id string) func(client.Event) bool {
	return func(e client.Event) bool { return e.Type == "message" && e.ID == id }
}

// One device that cannot take part in the ratchet (an rsa-suite device)
// gets key slots; the others still get the ratchet, and nobody is told of
// a downgrade, because none happened.
func TestMixedSendPerDevice(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	b1 := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	contacts(t, alpha, b1, "alpha@example.org", "bravo@example.org")
	b2 := c.login("bravo@example.org", "b2", "bravo password", keys.SuiteRSA)
	e1, e2 := listen(t, b1), listen(t, b2)
	sent := newEvents()
	alpha.SetEvents(sent.add)
	id, err := alpha.Send(ctx, "bravo@example.org", "mixed")
	if err != nil {
		t.Fatal(err)
	}
	if got := e1.wait(t, 20*time.Second, "message at b1", message(id)); got.Protocol != "ratchet" {
		t.Errorf("b1 (ec) got the message with %q, want ratchet", got.Protocol)
	}
	if got := e2.wait(t, 20*time.Second, "message at b2", message(id)); got.Protocol != "stp-group-v2" {
		t.Errorf("b2 (rsa) got the message with %q, want key slots", got.Protocol)
	}
	for name, e := range map[string]*events{"alpha": sent, "b1": e1, "b2": e2} {
		if d := e.of(client.EventDowngrade); len(d) != 0 {
			t.Errorf("%s: downgrade events %+v for a device that cannot take part", name, d)
		}
		// Each device skips the envelope that has no slot for it.
		if w := e.of("warning"); len(w) != 0 {
			t.Errorf("%s: warnings %+v", name, w)
		}
	}
}

// The cluster withholds a ratchet-capable device's bundle: the message
// still goes (key slots), with a downgrade event on both sides. Once the
// two devices share a session, the receiver refuses key slots from the
// sender and says so.
func TestDowngradeWarnedAndRefused(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	bravo := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	contacts(t, alpha, bravo, "alpha@example.org", "bravo@example.org")
	eb := listen(t, bravo)
	sent := newEvents()
	alpha.SetEvents(sent.add)

	// 1. No bundle for b1: key slots, reported by both.
	c.withholdSignedPrekeys("b1")
	id, err := alpha.Send(ctx, "bravo@example.org", "through key slots")
	if err != nil {
		t.Fatal(err)
	}
	if got := eb.wait(t, 20*time.Second, "first message", message(id)); got.Protocol == "ratchet" {
		t.Fatal("the message took the ratchet although the bundle was withheld")
	}
	if d := sent.of(client.EventDowngrade); len(d) != 1 || d[0].FromDevice != "b1" || d[0].ID != id {
		t.Errorf("sender's downgrade events %+v, want one for b1", d)
	}
	eb.wait(t, 30*time.Second, "receiver's downgrade event", func(e client.Event) bool {
		return e.Type == client.EventDowngrade && e.From == "alpha@example.org" && e.FromDevice == "a1"
	})

	// 2. The bundle is back (the next refresh republishes): a session.
	if err := client.PublishPrekeys(ctx, bravo); err != nil {
		t.Fatal(err)
	}
	id, err = alpha.Send(ctx, "bravo@example.org", "through the ratchet")
	if err != nil {
		t.Fatal(err)
	}
	if got := eb.wait(t, 20*time.Second, "second message", message(id)); got.Protocol != "ratchet" {
		t.Fatalf("second message with %q, want ratchet", got.Protocol)
	}

	// 3. Alpha's device loses its session and the bundle is withheld again:
	// b1 shares a session with a1, so it refuses the key slots.
	if err := client.ForgetSessions(ctx, alpha); err != nil {
		t.Fatal(err)
	}
	c.withholdSignedPrekeys("b1")
	id, err = alpha.Send(ctx, "bravo@example.org", "downgraded")
	if err != nil {
		t.Logf("send: %v", err)
	}
	eb.wait(t, 20*time.Second, "refusal", func(e client.Event) bool {
		return e.Type == client.EventDowngrade && e.FromDevice == "a1" && strings.HasPrefix(e.Error, "refused")
	})
	time.Sleep(time.Second)
	for _, e := range eb.of("message") {
		if e.ID == id {
			t.Fatalf("b1 accepted the key-slot message from a device it shares a ratchet session with: %+v", e)
		}
	}
}

// The signed prekey and the ML-KEM last-resort prekey are replaced every
// PrekeyRotation; the previous private keys stay for PrekeyGrace, then go;
// the cluster hands out only the current ones.
func TestPrekeyRotation(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	bravo := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	contacts(t, alpha, bravo, "alpha@example.org", "bravo@example.org")
	now := time.Now()
	client.SetClock(bravo, func() time.Time { return now })
	_, first, err := client.PrekeyIDs(ctx, bravo)
	if err != nil || first == 0 {
		t.Fatalf("no signed prekey after enrollment (%v)", err)
	}
	step := func(d time.Duration) (held []uint32, cur uint32) {
		t.Helper()
		now = now.Add(d)
		if err := client.PublishPrekeys(ctx, bravo); err != nil {
			t.Fatal(err)
		}
		held, cur, err := client.PrekeyIDs(ctx, bravo)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := client.BundleIDs(ctx, alpha, "bravo@example.org")
		if err != nil || ids["bravo@example.org/b1"] != cur {
			t.Fatalf("cluster hands out %v (%v), want the current signed prekey %d", ids, err, cur)
		}
		return held, cur
	}
	if held, cur := step(client.PrekeyRotation - time.Hour); cur != first || len(held) != 1 {
		t.Fatalf("before the interval: current %d held %v, want %d alone", cur, held, first)
	}
	held, second := step(2 * time.Hour)
	if second == first || fmt.Sprint(held) != fmt.Sprint([]uint32{first, second}) {
		t.Fatalf("after the interval: current %d held %v, want a new one and the previous kept", second, held)
	}
	// Within the grace period the previous key stays; past it, it goes.
	if held, _ := step(client.PrekeyGrace - time.Hour - 0*client.PrekeyRotation); len(held) < 2 || held[0] != first {
		t.Fatalf("within the grace period: held %v, want %d kept", held, first)
	}
	if held, _ := step(2 * time.Hour); held[0] == first {
		t.Fatalf("past the grace period: held %v, %d not deleted", held, first)
	}
}

// A contact's first device is trusted on first use; a device added later
// produces a new_device event before anything is sealed for it, is marked
// in Contacts and shown when listen starts, until trusted.
func TestNewDeviceEvent(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	bravo := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	contacts(t, alpha, bravo, "alpha@example.org", "bravo@example.org")
	sent := newEvents()
	alpha.SetEvents(sent.add)
	if _, err := alpha.Send(ctx, "bravo@example.org", "to the first device"); err != nil {
		t.Fatal(err)
	}
	if n := sent.of(client.NoticeNewDevice); len(n) != 0 {
		t.Fatalf("first device reported new: %+v", n)
	}
	c.login("bravo@example.org", "b2", "bravo password", keys.SuiteEC).Close()
	if _, err := alpha.Send(ctx, "bravo@example.org", "now to two devices"); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, e := range sent.all {
		if e.Type == client.NoticeNewDevice || e.Type == "sent" {
			order = append(order, e.Type+":"+e.FromDevice)
		}
	}
	if fmt.Sprint(order) != "[sent: new_device:b2 sent:]" {
		t.Fatalf("events %v, want new_device for b2 before the second message went", order)
	}
	cs, err := alpha.Contacts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	marked := map[string]bool{}
	for _, d := range cs[0].Devices {
		marked[d.Name] = d.NewDevice
	}
	if !marked["b2"] || marked["b1"] {
		t.Fatalf("contacts mark %v, want b2 new and b1 not", marked)
	}
	// 'listen' shows the notice when it starts, until the device is trusted.
	ev := listen(t, alpha)
	ev.wait(t, 30*time.Second, "new_device at listen", func(e client.Event) bool {
		return e.Type == client.NoticeNewDevice && e.FromDevice == "b2"
	})
	if err := alpha.TrustDevice(ctx, "bravo@example.org/b2"); err != nil {
		t.Fatal(err)
	}
	if ns, err := alpha.Notices(ctx); err != nil || len(ns) != 0 {
		t.Fatalf("notices after trusting: %+v %v", ns, err)
	}
}

// A first message made with the bundle of before a rotation, waiting on
// the cluster, still opens after the rotation (the previous signed prekey
// is kept for the grace period).
func TestRotationKeepsInFlightInitiation(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	bravo := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	contacts(t, alpha, bravo, "alpha@example.org", "bravo@example.org")
	_, before, err := client.PrekeyIDs(ctx, bravo)
	if err != nil {
		t.Fatal(err)
	}
	id, err := alpha.Send(ctx, "bravo@example.org", "initiated before the rotation")
	if err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(client.PrekeyRotation + time.Hour)
	client.SetClock(bravo, func() time.Time { return later })
	if err := client.PublishPrekeys(ctx, bravo); err != nil {
		t.Fatal(err)
	}
	if _, after, _ := client.PrekeyIDs(ctx, bravo); after == before {
		t.Fatal("no rotation")
	}
	ev := listen(t, bravo)
	if got := ev.wait(t, 20*time.Second, "the waiting message", message(id)); got.Protocol != "ratchet" {
		t.Fatalf("protocol %q", got.Protocol)
	}
	for _, e := range append(ev.of("warning"), ev.of(client.EventDowngrade)...) {
		t.Errorf("unexpected %s: %s", e.Type, e.Error)
	}
}

// One-time prekeys are signed by the device: one the cluster substitutes
// is left out of the session (which still starts, on the other keys).
func TestSubstitutedOneTimePrekeyDropped(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	bravo := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	contacts(t, alpha, bravo, "alpha@example.org", "bravo@example.org")
	if ok, err := client.BundleHasOneTime(ctx, alpha, "bravo@example.org/b1"); err != nil || !ok {
		t.Fatalf("the device's own one-time prekey refused: %v %v", ok, err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.cfg.DataDir, server.DBFile)+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT key_id, data FROM prekeys WHERE kind='onetime'`)
	if err != nil {
		t.Fatal(err)
	}
	subst := map[int64][]byte{}
	for rows.Next() {
		var id int64
		var data []byte
		if err := rows.Scan(&id, &data); err != nil {
			t.Fatal(err)
		}
		var k api.Prekey
		if err := json.Unmarshal(data, &k); err != nil {
			t.Fatal(err)
		}
		other, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k.Data = other.PublicKey().Bytes() // the cluster's key, the device's signature
		subst[id], _ = json.Marshal(k)
	}
	rows.Close()
	for id, data := range subst {
		if _, err := db.Exec(`UPDATE prekeys SET data=? WHERE kind='onetime' AND key_id=?`, data, id); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := client.BundleHasOneTime(ctx, alpha, "bravo@example.org/b1"); err != nil || ok {
		t.Fatalf("a substituted one-time prekey was used: %v %v", ok, err)
	}
	ev := listen(t, bravo)
	id, err := alpha.Send(ctx, "bravo@example.org", "without the one-time key")
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.wait(t, 20*time.Second, "message", message(id)); got.Protocol != "ratchet" {
		t.Fatalf("protocol %q", got.Protocol)
	}
}

// An ec-suite device never signs a capability record that leaves out the
// ratchet (which a cluster could keep and replay to hide it).
func TestNoRecordWithoutRatchet(t *testing.T) {
	c := startCluster(t, nil)
	p := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	signed, err := client.RecordWithoutPrekeys(context.Background(), p)
	if err != nil || signed {
		t.Fatalf("record signed without the ratchet: %v %v", signed, err)
	}
}
