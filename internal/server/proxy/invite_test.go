package proxy

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// phone is a test device that places and takes calls through the rig's
// proxy with sipgo's dialog layer, as PhoneX devices do.
type phone struct {
	r       *rig
	account string
	name    string
	ua      *sipgo.UserAgent
	cli     *sipgo.Client
	dua     *sipgo.DialogUA

	mu      sync.Mutex
	answer  func(dlg *sipgo.DialogServerSession) // how an INVITE is answered
	invites int
	cancels int
	acks    int
	byes    int
	dialogs map[string]*sipgo.DialogServerSession
	events  chan string
}

func (r *rig) phone(account, name string) *phone {
	r.t.Helper()
	cert := r.issue(account+"@"+domain+"/"+name, nil)
	tc := &tls.Config{RootCAs: r.pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname(domain), sipgo.WithUserAgenTLSConfig(tc))
	if err != nil {
		r.t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	cli, _ := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet))
	srv, _ := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: account, Host: domain, UriParams: sip.NewParams()}}
	contact.Address.UriParams.Add("transport", "tls")
	ph := &phone{r: r, account: account, name: name, ua: ua, cli: cli, dua: &sipgo.DialogUA{Client: cli, ContactHDR: contact},
		dialogs: map[string]*sipgo.DialogServerSession{}, events: make(chan string, 100)}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		if toTag(req) != "" {
			// A re-INVITE (RFC 3261 §14.2): accepted as it is.
			res := sip.NewResponseFromRequest(req, 200, "OK", []byte("v=0\r\n"))
			res.AppendHeader(ph.dua.ContactHDR.Clone())
			tx.Respond(res)
			ph.events <- "reinvite"
			return
		}
		dlg, err := ph.dua.ReadInvite(req, tx)
		if err != nil {
			return
		}
		ph.mu.Lock()
		ph.invites++
		ph.dialogs[req.CallID().Value()] = dlg
		answer := ph.answer
		ph.mu.Unlock()
		ph.events <- "invite"
		tx.OnCancel(func(*sip.Request) {
			ph.mu.Lock()
			ph.cancels++
			ph.mu.Unlock()
			ph.events <- "cancel"
		})
		if answer != nil {
			answer(dlg)
		}
		// sipgo ends the transaction when the handler returns: a
		// ringing device holds it until it is answered or cancelled.
		select {
		case <-tx.Done():
		case <-time.After(time.Minute):
		}
	})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		ph.mu.Lock()
		dlg := ph.dialogs[req.CallID().Value()]
		ph.acks++
		ph.mu.Unlock()
		if dlg != nil {
			dlg.ReadAck(req, tx)
		}
		ph.events <- "ack"
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		ph.mu.Lock()
		dlg := ph.dialogs[req.CallID().Value()]
		ph.byes++
		ph.mu.Unlock()
		if dlg != nil {
			dlg.ReadBye(req, tx)
		} else {
			tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		}
		ph.events <- "bye"
	})
	srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		ph.events <- "info"
	})
	r.t.Cleanup(func() { ua.Close() })
	return ph
}

func (ph *phone) setAnswer(f func(dlg *sipgo.DialogServerSession)) {
	ph.mu.Lock()
	ph.answer = f
	ph.mu.Unlock()
}

func (ph *phone) count() (invites, cancels, acks, byes int) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.invites, ph.cancels, ph.acks, ph.byes
}

func (ph *phone) register() {
	ph.r.t.Helper()
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: domain})
	u := sip.Uri{Scheme: "sip", User: ph.account, Host: domain}
	from := &sip.FromHeader{Address: u, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: u, Params: sip.NewParams()})
	c := ph.dua.ContactHDR.Clone()
	req.AppendHeader(c)
	req.AppendHeader(sip.NewHeader("Expires", "60"))
	req.SetTransport("TLS")
	req.SetDestination(ph.r.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ph.cli.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		ph.r.t.Fatalf("register %s/%s: %v %v", ph.account, ph.name, res, err)
	}
}

// ring answers INVITEs with 180 and then what final says after delay
// (0: keep ringing).
func ring(delay time.Duration, final int) func(*sipgo.DialogServerSession) {
	return func(dlg *sipgo.DialogServerSession) {
		dlg.Respond(180, "Ringing", nil)
		if final == 0 {
			return
		}
		time.Sleep(delay)
		if final == 200 {
			dlg.RespondSDP([]byte("v=0\r\n"))
			return
		}
		dlg.Respond(final, "Final", nil)
	}
}

// call places a call as the phone's account (or as fromUser) to target
// (user, or user;device=NAME) and returns the session and its outcome.
func (ph *phone) call(ctx context.Context, fromUser, target string, ringing func()) (*sipgo.DialogClientSession, error) {
	user, params, _ := strings.Cut(target, ";")
	host := domain
	if u, h, ok := strings.Cut(user, "@"); ok {
		user, host = u, h
	}
	to := sip.Uri{Scheme: "sip", User: user, Host: host, UriParams: sip.NewParams()}
	if k, v, ok := strings.Cut(params, "="); ok {
		to.UriParams.Add(k, v)
	}
	req := sip.NewRequest(sip.INVITE, to)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: fromUser, Host: domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\n"))
	req.SetTransport("TLS")
	req.SetDestination(ph.r.addr)
	sess, err := ph.dua.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
		if res.StatusCode == 180 && ringing != nil {
			ringing()
		}
		return nil
	}})
	return sess, err
}

func status(err error) int {
	var e *sipgo.ErrDialogResponse
	if errors.As(err, &e) {
		return e.Res.StatusCode
	}
	return 0
}

// lockedLog is a log destination the proxy writes while the test reads.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rows counts the rows of every table of the rig's database.
func (r *rig) rows() string {
	r.t.Helper()
	db, err := sql.Open("sqlite", "file:"+r.path+"?mode=ro")
	if err != nil {
		r.t.Fatal(err)
	}
	defer db.Close()
	names, err := db.Query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
	if err != nil {
		r.t.Fatal(err)
	}
	var tables []string
	for names.Next() {
		var n string
		names.Scan(&n)
		tables = append(tables, n)
	}
	names.Close()
	var out []string
	for _, n := range tables {
		var c int
		if err := db.QueryRow(`SELECT count(*) FROM "` + n + `"`).Scan(&c); err != nil {
			r.t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", n, c))
	}
	return strings.Join(out, " ")
}

// observer records CallStarted and CallEnded.
type observer struct {
	mu     sync.Mutex
	events []string
}

func (o *observer) CallStarted(account, device string) { o.add("start " + account + "/" + device) }
func (o *observer) CallEnded(account, device string)   { o.add("end " + account + "/" + device) }
func (o *observer) add(s string) {
	o.mu.Lock()
	o.events = append(o.events, s)
	o.mu.Unlock()
}
func (o *observer) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.events...)
}

func wait(t *testing.T, ph *phone, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-ph.events:
			if e == want {
				return
			}
		case <-timeout:
			t.Fatalf("%s/%s: no %s", ph.account, ph.name, want)
		}
	}
}

func TestCallForkFirstAnswerWins(t *testing.T) {
	obs := &observer{}
	r, _ := newRig(t, func(c *Config) { c.Calls = obs })
	r.account("alice", "a1")
	r.account("bob", "b1", "b2")
	r.friends("alice", "bob")
	a1, b1, b2 := r.phone("alice", "a1"), r.phone("bob", "b1"), r.phone("bob", "b2")
	for _, ph := range []*phone{a1, b1, b2} {
		ph.register()
	}
	b1.setAnswer(ring(200*time.Millisecond, 200))
	b2.setAnswer(ring(0, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rang := false
	sess, err := a1.call(ctx, "alice", "bob", func() { rang = true })
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if !rang {
		t.Error("the caller saw no 180 Ringing")
	}
	if rr := sess.InviteResponse.GetHeader("Record-Route"); rr == nil || !strings.Contains(rr.Value(), r.addr) {
		t.Errorf("Record-Route towards the caller = %v, want the node's address %s", rr, r.addr)
	}
	wait(t, b2, "cancel")
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	wait(t, b1, "ack")
	if r.p.ActiveCalls() != 1 {
		t.Errorf("active calls = %d, want 1", r.p.ActiveCalls())
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("BYE through the node: %v", err)
	}
	wait(t, b1, "bye")
	if n := r.p.ActiveCalls(); n != 0 {
		t.Errorf("active calls after BYE = %d", n)
	}
	if _, _, acks, byes := b2.count(); acks != 0 || byes != 0 {
		t.Errorf("the cancelled device got %d ACK, %d BYE", acks, byes)
	}
	want := []string{"start alice@example.org/a1", "start bob@example.org/b1", "end alice@example.org/a1", "end bob@example.org/b1"}
	if got := obs.list(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("observer saw %v, want %v", got, want)
	}
}

// TestCallInDialog: re-INVITE and INFO reach the other device through the
// node; a device that is not in the call cannot inject into it.
func TestCallInDialog(t *testing.T) {
	r, _ := newRig(t, nil)
	r.account("alice", "a1")
	r.account("bob", "b1")
	r.account("eve", "e1")
	r.friends("alice", "bob")
	a1, b1, e1 := r.phone("alice", "a1"), r.phone("bob", "b1"), r.phone("eve", "e1")
	a1.register()
	b1.register()
	e1.register()
	b1.setAnswer(ring(0, 200))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := a1.call(ctx, "alice", "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	sess.Ack(ctx)
	wait(t, b1, "ack")
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.INFO} {
		req := sip.NewRequest(m, sess.InviteResponse.Contact().Address)
		if m == sip.INVITE {
			req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			req.SetBody([]byte("v=0\r\n"))
		}
		res, err := sess.Do(ctx, req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("%s in the dialog: %v %v", m, res, err)
		}
		if m == sip.INVITE {
			ack := sip.NewRequest(sip.ACK, sess.InviteResponse.Contact().Address)
			sess.WriteRequest(ack)
		}
	}
	wait(t, b1, "reinvite")
	wait(t, b1, "info")
	// eve forges a BYE with the call's Call-ID and tags, from her own
	// connection.
	bye := sip.NewRequest(sip.BYE, sip.Uri{Scheme: "sip", User: "bob", Host: domain})
	bye.AppendHeader(sip.HeaderClone(sess.InviteRequest.From()))
	bye.AppendHeader(sip.HeaderClone(sess.InviteResponse.To()))
	bye.AppendHeader(sip.HeaderClone(sess.InviteRequest.CallID()))
	bye.AppendHeader(&sip.CSeqHeader{SeqNo: 99, MethodName: sip.BYE})
	bye.SetTransport("TLS")
	bye.SetDestination(r.addr)
	res, err := e1.cli.Do(ctx, bye)
	if err != nil || res.StatusCode != 403 {
		t.Fatalf("a forged BYE: %v %v, want 403", res, err)
	}
	if _, _, _, byes := b1.count(); byes != 0 || r.p.ActiveCalls() != 1 {
		t.Fatalf("the forged BYE reached bob (%d) or ended the call", byes)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	wait(t, b1, "bye")
}

func TestCallCalleeHangsUp(t *testing.T) {
	r, _ := newRig(t, nil)
	r.account("alice", "a1")
	r.account("bob", "b1")
	r.friends("alice", "bob")
	a1, b1 := r.phone("alice", "a1"), r.phone("bob", "b1")
	a1.register()
	b1.register()
	b1.setAnswer(ring(0, 200))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The caller takes the callee's BYE for its dialog.
	var sess *sipgo.DialogClientSession
	byeSeen := make(chan struct{})
	srvCaller, _ := sipgo.NewServer(a1.ua)
	srvCaller.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		sess.ReadBye(req, tx)
		close(byeSeen)
	})
	sess, err := a1.call(ctx, "alice", "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	sess.Ack(ctx)
	wait(t, b1, "ack")
	b1.mu.Lock()
	var dlg *sipgo.DialogServerSession
	for _, d := range b1.dialogs {
		dlg = d
	}
	b1.mu.Unlock()
	if err := dlg.Bye(ctx); err != nil {
		t.Fatalf("callee's BYE through the node: %v", err)
	}
	select {
	case <-byeSeen:
	case <-ctx.Done():
		t.Fatal("the caller never got the callee's BYE")
	}
	waitUntil(t, "the dialog to end", 5*time.Second, func() bool { return r.p.ActiveCalls() == 0 })
}

func TestCallOutcomes(t *testing.T) {
	tests := []struct {
		name   string
		b1, b2 func(*sipgo.DialogServerSession)
		reg    bool // register bob's devices
		target string
		want   int
		reason string
	}{
		{name: "both busy", b1: ring(50*time.Millisecond, 486), b2: ring(100*time.Millisecond, 486), reg: true, target: "bob", want: 486},
		{name: "one declines for all", b1: ring(50*time.Millisecond, 603), b2: ring(0, 0), reg: true, target: "bob", want: 603},
		{name: "busy beats unavailable", b1: ring(50*time.Millisecond, 480), b2: ring(80*time.Millisecond, 486), reg: true, target: "bob", want: 486},
		{name: "offline", reg: false, target: "bob", want: 480, reason: reasonOffline},
		{name: "no answer", b1: ring(0, 0), b2: ring(0, 0), reg: true, target: "bob", want: 408, reason: reasonNoAnswer},
		{name: "unknown user", reg: true, target: "nobody", want: 403, reason: reasonNotContact},
		{name: "other domain", reg: true, target: "bob@other.example", want: 404},
		{name: "one device only", b1: ring(0, 486), b2: ring(0, 200), reg: true, target: "bob;device=b1", want: 486},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _ := newRig(t, func(c *Config) { c.RingTimeout = 500 * time.Millisecond })
			r.account("alice", "a1")
			r.account("bob", "b1", "b2")
			r.friends("alice", "bob")
			a1, b1, b2 := r.phone("alice", "a1"), r.phone("bob", "b1"), r.phone("bob", "b2")
			a1.register()
			if tc.reg {
				b1.register()
				b2.register()
			}
			b1.setAnswer(tc.b1)
			b2.setAnswer(tc.b2)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := a1.call(ctx, "alice", tc.target, nil)
			var e *sipgo.ErrDialogResponse
			if !errors.As(err, &e) || e.Res.StatusCode != tc.want {
				t.Fatalf("call: %v, want %d", err, tc.want)
			}
			if tc.reason != "" && e.Res.Reason != tc.reason {
				t.Errorf("reason %q, want %q", e.Res.Reason, tc.reason)
			}
			if tc.name == "one device only" {
				if n, _, _, _ := b2.count(); n != 0 {
					t.Errorf("the device not named rang %d times", n)
				}
			}
			if tc.name == "one declines for all" {
				wait(t, b2, "cancel")
			}
		})
	}
}

func TestCallCallerCancels(t *testing.T) {
	r, _ := newRig(t, nil)
	r.account("alice", "a1")
	r.account("bob", "b1", "b2")
	r.friends("alice", "bob")
	a1, b1, b2 := r.phone("alice", "a1"), r.phone("bob", "b1"), r.phone("bob", "b2")
	for _, ph := range []*phone{a1, b1, b2} {
		ph.register()
	}
	b1.setAnswer(ring(0, 0))
	b2.setAnswer(ring(0, 0))
	ctx, cancel := context.WithCancel(context.Background())
	ringing := make(chan struct{}, 2)
	done := make(chan error, 1)
	go func() {
		_, err := a1.call(ctx, "alice", "bob", func() { ringing <- struct{}{} })
		done <- err
	}()
	<-ringing
	wait(t, b1, "invite")
	wait(t, b2, "invite")
	cancel()
	wait(t, b1, "cancel")
	wait(t, b2, "cancel")
	if err := <-done; err == nil {
		t.Fatal("a cancelled call connected")
	}
}

// TestCallGatingStoresNothing: INVITEs from someone the callee has not
// listed (or who has not listed the callee) are refused before any device
// is contacted; a storm of them rings nothing and stores nothing but the
// counter.
func TestCallGatingStoresNothing(t *testing.T) {
	var logged lockedLog
	r, _ := newRig(t, func(c *Config) {
		c.Log = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	r.account("mallory", "m1")
	r.account("bob", "b1")
	r.account("carol", "c1")
	r.friends("carol", "bob")
	r.contact("mallory", "bob") // one-sided: bob never listed mallory
	m1, b1 := r.phone("mallory", "m1"), r.phone("bob", "b1")
	m1.register()
	b1.register()
	b1.setAnswer(ring(0, 200))
	tables := r.rows()
	logMark := len(logged.String())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := m1.call(ctx, "mallory", "bob", nil)
	if status(err) != 403 {
		t.Fatalf("non-contact's call: %v, want 403", err)
	}
	// Spoofing a contact in From does not help: identity is the certificate.
	if _, err := m1.call(ctx, "carol", "bob", nil); status(err) != 403 {
		t.Fatalf("call with a forged From: %v, want 403", err)
	}
	refused := 0
	for i := 0; i < 40; i++ {
		_, err := m1.call(ctx, "mallory", "bob", nil)
		switch status(err) {
		case 403:
			refused++
		case 503:
		default:
			t.Fatalf("storm call %d: %v", i, err)
		}
	}
	if refused == 0 {
		t.Error("no call of the storm was refused as a non-contact's")
	}
	if n, _, _, _ := b1.count(); n != 0 {
		t.Fatalf("the callee's device saw %d INVITEs from a non-contact", n)
	}
	if got := r.p.RefusedCalls(); got != uint64(refused+1) {
		t.Errorf("refused counter = %d, want %d", got, refused+1)
	}
	if after := r.rows(); after != tables {
		t.Errorf("the store changed: %s -> %s", tables, after)
	}
	// Nor is who called whom logged, at any level.
	for _, l := range strings.Split(logged.String()[logMark:], "\n") {
		// The registrations just before may still be logging.
		if !strings.Contains(l, "msg=registered") && (strings.Contains(l, "mallory") || strings.Contains(l, "bob@")) {
			t.Errorf("a refused call was logged: %s", l)
		}
	}
	// A mutual contact gets through (once the storm's rate limit has
	// passed).
	r.contact("bob", "mallory")
	r.p.router.limits = newLimiter(100, 100)
	if _, err := m1.call(ctx, "mallory", "bob", nil); err != nil {
		t.Fatalf("a mutual contact's call: %v", err)
	}
}

// TestCallEndsWhenALegDisconnects: a device that loses its connection
// mid-call cannot send BYE; the node ends the dialog and tells the
// observer.
func TestCallEndsWhenALegDisconnects(t *testing.T) {
	obs := &observer{}
	r, _ := newRig(t, func(c *Config) { c.Calls = obs })
	r.account("alice", "a1")
	r.account("bob", "b1")
	r.friends("alice", "bob")
	a1, b1 := r.phone("alice", "a1"), r.phone("bob", "b1")
	a1.register()
	b1.register()
	b1.setAnswer(ring(0, 200))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, err := a1.call(ctx, "alice", "bob", nil)
	if err != nil {
		t.Fatal(err)
	}
	sess.Ack(ctx)
	wait(t, b1, "ack")
	b1.ua.Close()
	waitUntil(t, "the dialog to end", 5*time.Second, func() bool { return r.p.ActiveCalls() == 0 })
	if got := obs.list(); len(got) != 4 || got[2] != "end alice@example.org/a1" || got[3] != "end bob@example.org/b1" {
		t.Errorf("observer saw %v", got)
	}
}

// BenchmarkRoutedCall is one call through the node per iteration: INVITE
// forked to two devices (one answers, the other is cancelled), ACK, BYE,
// over loopback TLS.
func BenchmarkRoutedCall(b *testing.B) {
	r, _ := newRig(b, nil)
	r.account("alice", "a1")
	r.account("bob", "b1", "b2")
	r.friends("alice", "bob")
	r.p.router.limits = newLimiter(1e9, 1<<30)
	a1, b1, b2 := r.phone("alice", "a1"), r.phone("bob", "b1"), r.phone("bob", "b2")
	for _, ph := range []*phone{a1, b1, b2} {
		ph.register()
	}
	b1.setAnswer(ring(0, 200))
	b2.setAnswer(ring(0, 0))
	drain := func(ph *phone) {
		for {
			select {
			case <-ph.events:
			default:
				return
			}
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		sess, err := a1.call(ctx, "alice", "bob", nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := sess.Ack(ctx); err != nil {
			b.Fatal(err)
		}
		if err := sess.Bye(ctx); err != nil {
			b.Fatal(err)
		}
		drain(b1)
		drain(b2)
	}
}
