package sipua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Config configures a user agent.
type Config struct {
	// Listen is the SIP address, host:port; port 0 picks a free one.
	// The host must be an IP address: it goes into Contact and SDP.
	Listen string
	// Transport is "udp" (default) or "tcp".
	Transport string
	// User is the user part of our SIP URI; "phonex" if empty.
	User   string
	Logger *slog.Logger
}

// UA is a SIP user agent for direct calls: it listens on one address and
// places or answers calls there.
type UA struct {
	log       *slog.Logger
	user      string
	transport string
	host      string
	port      int

	ua  *sipgo.UserAgent
	srv *sipgo.Server
	cli *sipgo.Client
	dua *sipgo.DialogUA
	pc  net.PacketConn
	ln  net.Listener

	invites chan *incoming
	mu      sync.Mutex
	calls   map[string]*Call // by Call-ID

	// proxy is the home node (host:port) of a user agent that places and
	// takes calls through it (NewRoutedUA); aor is then our address of
	// record, user@domain. Empty for direct calls.
	proxy string
	aor   sip.Uri
}

type incoming struct {
	req  *sip.Request
	tx   sip.ServerTransaction
	done chan struct{}
}

// NewUA starts listening.
func NewUA(cfg Config) (*UA, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	u := &UA{log: log, user: cfg.User, transport: strings.ToLower(cfg.Transport), invites: make(chan *incoming), calls: map[string]*Call{}}
	if u.user == "" {
		u.user = "phonex"
	}
	if u.transport == "" {
		u.transport = "udp"
	}
	ap, err := netip.ParseAddrPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("SIP listen address %q: want IP:PORT: %w", cfg.Listen, err)
	}
	var laddr net.Addr
	switch u.transport {
	case "udp":
		u.pc, err = net.ListenPacket("udp", ap.String())
		if err == nil {
			laddr = u.pc.LocalAddr()
		}
	case "tcp":
		u.ln, err = net.Listen("tcp", ap.String())
		if err == nil {
			laddr = u.ln.Addr()
		}
	default:
		return nil, fmt.Errorf("SIP transport %q: want udp or tcp", cfg.Transport)
	}
	if err != nil {
		return nil, fmt.Errorf("SIP listen: %w", err)
	}
	bound, _ := netip.ParseAddrPort(laddr.String())
	u.host, u.port = bound.Addr().Unmap().String(), int(bound.Port())

	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("PhoneX"), sipgo.WithUserAgentHostname(u.host))
	if err != nil {
		u.closeListeners()
		return nil, fmt.Errorf("SIP user agent: %w", err)
	}
	u.srv, err = sipgo.NewServer(u.ua, sipgo.WithServerLogger(log))
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("SIP server: %w", err)
	}
	opts := []sipgo.ClientOption{sipgo.WithClientLogger(log), sipgo.WithClientHostname(u.host)}
	if u.transport == "udp" {
		// Send from the listening socket so that responses and in-dialog
		// requests come back to the address in Via and Contact.
		opts = append(opts, sipgo.WithClientConnectionAddr(laddr.String()))
	}
	u.cli, err = sipgo.NewClient(u.ua, opts...)
	if err != nil {
		u.Close()
		return nil, fmt.Errorf("SIP client: %w", err)
	}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: u.user, Host: u.host, Port: u.port}}
	if u.transport == "tcp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", "tcp")
	}
	u.dua = &sipgo.DialogUA{Client: u.cli, ContactHDR: contact}

	u.srv.OnInvite(u.onInvite)
	u.srv.OnAck(u.onAck)
	u.srv.OnBye(u.onBye)
	u.srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	switch u.transport {
	case "udp":
		go u.srv.ServeUDP(u.pc)
		// Requests must leave from the listening socket, which sipgo
		// registers asynchronously: wait for it before the first INVITE.
		tl := u.ua.TransportLayer()
		for i := 0; ; i++ {
			if c, err := tl.GetConnection("udp", laddr.String()); err == nil && c != nil {
				break
			}
			if i == 200 {
				u.Close()
				return nil, errors.New("SIP listen: the UDP listener did not start")
			}
			time.Sleep(5 * time.Millisecond)
		}
	case "tcp":
		go u.srv.ServeTCP(u.ln)
	}
	return u, nil
}

// Addr is the SIP address the user agent listens on, host:port.
func (u *UA) Addr() string { return net.JoinHostPort(u.host, strconv.Itoa(u.port)) }

// URI is our SIP URI.
func (u *UA) URI() string {
	s := "sip:" + u.user + "@" + u.Addr()
	if u.transport == "tcp" {
		s += ";transport=tcp"
	}
	return s
}

func (u *UA) closeListeners() {
	if u.pc != nil {
		u.pc.Close()
	}
	if u.ln != nil {
		u.ln.Close()
	}
}

// Close hangs up every call still up, then stops listening. The calls
// are hung up together, each BYE given at most closeByeWait, and Close
// returns once their media has stopped: nothing of the agent runs, plays,
// records or writes its ZRTP store after it.
func (u *UA) Close() error {
	u.mu.Lock()
	calls := make([]*Call, 0, len(u.calls))
	for _, c := range u.calls {
		calls = append(calls, c)
	}
	u.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), closeByeWait)
			defer cancel()
			c.Hangup(ctx)
		}()
	}
	wg.Wait()
	if u.srv != nil {
		u.srv.Close()
	}
	if u.cli != nil {
		u.cli.Close()
	}
	if u.ua != nil {
		u.ua.Close()
	}
	u.closeListeners()
	return nil
}

// closeByeWait bounds the BYE of a call that Close hangs up: a peer that
// does not answer must not hold the agent open.
const closeByeWait = 2 * time.Second

func (u *UA) register(c *Call) {
	u.mu.Lock()
	u.calls[c.callID] = c
	u.mu.Unlock()
}

func (u *UA) forget(c *Call) {
	u.mu.Lock()
	if u.calls[c.callID] == c {
		delete(u.calls, c.callID)
	}
	u.mu.Unlock()
}

func (u *UA) lookup(req *sip.Request) *Call {
	id := req.CallID()
	if id == nil {
		return nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[id.Value()]
}

func (u *UA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params != nil {
		if tag, ok := to.Params.Get("tag"); ok && tag != "" {
			if c := u.lookup(req); c != nil {
				c.onReinvite(req, tx)
				return
			}
			_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
			return
		}
	}
	in := &incoming{req: req, tx: tx, done: make(chan struct{})}
	select {
	case u.invites <- in:
		<-in.done
	case <-time.After(100 * time.Millisecond):
		// Nobody is waiting in Accept: one call at a time (RFC 3261 §21.4.24).
		_ = tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
	}
}

func (u *UA) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := u.lookup(req); c != nil && c.sdlg != nil {
		_ = c.sdlg.ReadAck(req, tx)
	}
}

func (u *UA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := u.lookup(req)
	if c == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	var err error
	if c.cdlg != nil {
		err = c.cdlg.ReadBye(req, tx)
	} else if c.sdlg != nil {
		err = c.sdlg.ReadBye(req, tx)
	}
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	go c.end("remote hangup", nil)
}

// Dial calls target (a sip: URI) and returns once the call is answered,
// with media running. Cancelling ctx before the answer sends CANCEL.
func (u *UA) Dial(ctx context.Context, target string, opts CallOptions) (*Call, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("call %s: not a SIP URI: %w", target, err)
	}
	c, err := newCall(u, opts, true)
	if err != nil {
		return nil, err
	}
	if err := c.offerICE(ctx); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("call %s: %w", target, err)
	}
	req := sip.NewRequest(sip.INVITE, uri)
	req.SetTransport(u.transport)
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: u.user, Host: u.host, Port: u.port}, Params: sip.NewParams()}
	if u.proxy != "" {
		// Through the home node: From is our address of record (the node
		// checks it against the device certificate), and the INVITE goes
		// over the device's connection to the node, whatever the
		// Request-URI's host.
		from.Address = u.aor
		req.SetDestination(u.proxy)
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: uri.Scheme, User: uri.User, Host: uri.Host}, Params: sip.NewParams()})
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(&from)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS"))
	offer, err := c.signOffer(req)
	if err != nil {
		c.conn.Close()
		return nil, err
	}
	req.SetBody(offer)
	c.emit(Event{Type: EventCalling, Peer: target})
	sess, err := u.dua.WriteInvite(ctx, req)
	if err != nil {
		c.conn.Close()
		return nil, u.dialFailure(target, err, false)
	}
	c.cdlg = sess
	c.callID = req.CallID().Value()
	u.register(c)
	ringing := false
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{OnResponse: func(r *sip.Response) error {
		if (r.StatusCode == 180 || r.StatusCode == 183) && !ringing {
			ringing = true
			c.emit(Event{Type: EventRinging})
		}
		return nil
	}})
	if err != nil {
		u.forget(c)
		c.conn.Close()
		sess.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("call %s: cancelled before the answer (CANCEL sent)", target)
		}
		return nil, u.dialFailure(target, err, ringing)
	}
	ans, err := ParseMedia(sess.InviteResponse.Body())
	var chosen Codec
	if err == nil {
		chosen, err = Chosen(c.local.Codecs, ans)
	}
	if err == nil && ans.Port == 0 {
		err = errors.New("the peer refused the audio stream")
	}
	if err != nil {
		// RFC 3261 §13.2.2.4: ACK the 2xx, then BYE a session we cannot use.
		_ = sess.Ack(ctx)
		_ = sess.Bye(ctx)
		u.forget(c)
		c.conn.Close()
		return nil, fmt.Errorf("call %s: answer: %w", target, err)
	}
	if err := sess.Ack(ctx); err != nil {
		u.forget(c)
		c.conn.Close()
		return nil, fmt.Errorf("call %s: ACK: %w", target, err)
	}
	c.remote, c.codec = ans, chosen
	c.checkAnswer(ans)
	if err := c.connected(ctx, target); err != nil {
		_ = c.Hangup(context.Background())
		return nil, err
	}
	return c, nil
}

// Why a call was not answered, for callers that branch on it.
var (
	ErrBusy        = errors.New("busy")
	ErrDeclined    = errors.New("declined")
	ErrNoAnswer    = errors.New("no answer")
	ErrUnreachable = errors.New("cannot reach the peer")
	ErrRefused     = errors.New("refused")
)

// DialError says in words why a call was not answered. Err is one of
// ErrBusy, ErrDeclined, ErrNoAnswer, ErrUnreachable or ErrRefused.
type DialError struct {
	Target string
	Err    error
	// Status is the peer's final response, 0 when there was none.
	Status int
	Detail string
}

func (e *DialError) Error() string { return e.Detail }

func (e *DialError) Unwrap() error { return e.Err }

// dialFailure turns a SIP transaction or final response failure into
// words (RFC 3261 §21 for the status codes).
func dialFailure(target string, err error, ringing bool) error {
	var res *sip.Response
	var rp *sipgo.ErrDialogResponse
	var rv sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &rp):
		res = rp.Res
	case errors.As(err, &rv):
		res = rv.Res
	}
	e := &DialError{Target: target}
	if res != nil {
		e.Status = res.StatusCode
		status := fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
		switch code := res.StatusCode; {
		case code == 486 || code == 600:
			e.Err, e.Detail = ErrBusy, fmt.Sprintf("%s is busy (%s)", target, status)
		case code == 603 || code == 403:
			e.Err, e.Detail = ErrDeclined, fmt.Sprintf("%s declined the call (%s)", target, status)
		case code == 408 || code == 480 || code == 487:
			e.Err, e.Detail = ErrNoAnswer, fmt.Sprintf("no answer from %s (%s)", target, status)
		case code == 404 || code == 604:
			e.Err, e.Detail = ErrUnreachable, fmt.Sprintf("cannot reach %s: no such user there (%s)", target, status)
		case code == 488 || code == 606 || code == 415:
			e.Err, e.Detail = ErrRefused, fmt.Sprintf("%s cannot take this call: no audio codec or encryption in common (%s)", target, status)
		default:
			e.Err, e.Detail = ErrRefused, fmt.Sprintf("%s refused the call (%s)", target, status)
		}
		return e
	}
	switch {
	case errors.Is(err, sip.ErrTransactionTimeout) && ringing:
		e.Err, e.Detail = ErrNoAnswer, fmt.Sprintf("no answer from %s: it rang but nobody answered", target)
	case errors.Is(err, sip.ErrTransactionTimeout):
		e.Err, e.Detail = ErrUnreachable, fmt.Sprintf("cannot reach %s: no response (is a SIP phone listening at that address and transport?)", target)
	default:
		detail := "the connection failed"
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			detail = oe.Err.Error()
		}
		e.Err, e.Detail = ErrUnreachable, fmt.Sprintf("cannot reach %s: %s", target, detail)
	}
	return e
}

func (c *Call) connected(ctx context.Context, peer string) error {
	c.peer = peer
	// A re-INVITE may already change the description: read it under
	// sigMu.
	c.sigMu.Lock()
	remote, chosen := *c.remote, c.codec
	c.sigMu.Unlock()
	if remote.ZRTPHash == "" {
		c.log.Info("peer signalled no zrtp-hash; waiting for a ZRTP Hello")
	}
	if remote.SDES {
		c.alert("the peer offered SDES keys (a=crypto), which a signalling server can read; ignored, ZRTP is used")
	}
	if err := c.startMedia(ctx); err != nil {
		return err
	}
	c.emit(Event{Type: EventConnected, Peer: peer, Codec: chosen.String(),
		RemoteRTP: netip.AddrPortFrom(remote.Addr, uint16(remote.Port)).String()})
	return nil
}

// Accept waits for an incoming INVITE and answers it: 180, then 200 with
// the SDP answer. It returns with media running.
func (u *UA) Accept(ctx context.Context, opts CallOptions) (*Call, error) {
	for {
		var in *incoming
		select {
		case in = <-u.invites:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		c, err := u.answer(ctx, in, opts)
		close(in.done)
		if err != nil {
			u.log.Warn("incoming call refused", "err", err)
			if errors.Is(err, context.Canceled) {
				return nil, err
			}
			if opts.OnEvent != nil {
				opts.OnEvent(Event{Type: EventAlert, Time: time.Now(), Reason: "incoming call refused: " + err.Error()})
			}
			continue
		}
		return c, nil
	}
}

func (u *UA) answer(ctx context.Context, in *incoming, opts CallOptions) (*Call, error) {
	req, tx := in.req, in.tx
	offer, err := ParseMedia(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return nil, fmt.Errorf("offer: %w", err)
	}
	c, err := newCall(u, opts, false)
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return nil, err
	}
	if err := c.answerICE(ctx, offer); err != nil {
		c.conn.Close()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return nil, fmt.Errorf("offer: %w", err)
	}
	ans, chosen, err := Answer(offer, c.local)
	if err != nil {
		c.conn.Close()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return nil, fmt.Errorf("offer: %w", err)
	}
	err = c.checkOffer(req, offer, ans)
	var body []byte
	if err == nil {
		body, err = ans.Marshal()
	}
	if err != nil {
		c.conn.Close()
		_ = tx.Respond(sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil))
		return nil, err
	}
	dlg, err := u.dua.ReadInvite(req, tx)
	if err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("INVITE: %w", err)
	}
	c.sdlg = dlg
	c.callID = req.CallID().Value()
	c.local, c.remote, c.codec = *ans, offer, chosen
	u.register(c)
	fail := func(err error) (*Call, error) {
		u.forget(c)
		c.conn.Close()
		dlg.Close()
		return nil, err
	}
	if err := dlg.Respond(180, "Ringing", nil); err != nil {
		return fail(fmt.Errorf("180 Ringing: %w", err))
	}
	c.emit(Event{Type: EventRinging})
	if err := dlg.RespondSDP(body); err != nil {
		return fail(fmt.Errorf("200 OK: %w", err))
	}
	peer := "sip:?"
	if f := req.From(); f != nil {
		peer = f.Address.String()
	}
	if who := routedCaller(u, req); who != "" {
		peer = who
	}
	if err := c.connected(ctx, peer); err != nil {
		_ = c.Hangup(context.Background())
		return nil, err
	}
	return c, nil
}

// onReinvite answers a re-INVITE from the peer (RFC 3261 §14.2): hold and
// resume (RFC 3264 §8.4) and address changes are accepted; a description
// that drops ZRTP is refused with 488, which leaves the session as it was,
// and the user is alerted.
func (c *Call) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string, body []byte) {
		res := sip.NewResponseFromRequest(req, code, reason, body)
		if code == 200 {
			contact := c.ua.dua.ContactHDR
			res.AppendHeader(&contact)
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		}
		if err := tx.Respond(res); err != nil {
			c.log.Debug("re-INVITE response", "err", err)
		}
	}
	if c.sdlg != nil {
		_ = c.sdlg.ReadRequest(req, tx)
	} else if c.cdlg != nil {
		_ = c.cdlg.ReadRequest(req, tx)
	}
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if len(req.Body()) == 0 {
		// An offerless re-INVITE: our 200 carries the offer, the ACK
		// the answer; we keep the media as it is.
		c.local.Version++
		body, err := c.local.Marshal()
		if err != nil {
			respond(500, "Server Internal Error", nil)
			return
		}
		respond(200, "OK", body)
		return
	}
	offer, err := ParseMedia(req.Body())
	if err != nil {
		c.alert("the peer sent a re-INVITE we cannot read (%v); refused, the call goes on unchanged", err)
		respond(488, "Not Acceptable Here", nil)
		return
	}
	if offer.ZRTPHash == "" && c.remote.ZRTPHash != "" || offer.SDES {
		what := "plain RTP"
		if offer.SDES {
			what = "SDES keys a signalling server can read"
		}
		c.alert("the peer tried to renegotiate the call without ZRTP (to %s); refused, the call stays on its ZRTP keys. If this persists, hang up", what)
		respond(488, "Not Acceptable Here", nil)
		return
	}
	local := c.local
	local.Codecs = []Codec{c.codec, CodecTelephoneEvent}
	if r, ok := redFor(&c.local, c.codec.PT); ok {
		local.Codecs = append(local.Codecs, r)
	}
	ans, _, err := Answer(offer, local)
	if err != nil {
		c.alert("the peer's re-INVITE changes the codec, which is not supported; refused")
		respond(488, "Not Acceptable Here", nil)
		return
	}
	ans.Version = c.local.Version + 1
	body, err := ans.Marshal()
	if err != nil {
		respond(500, "Server Internal Error", nil)
		return
	}
	wasHeld := c.remote.OnHold()
	held := offer.OnHold()
	c.local.Version = ans.Version
	c.local.Direction = ans.Direction
	prevHash := c.remote.ZRTPHash
	c.remote = offer
	if offer.ZRTPHash == "" {
		c.remote.ZRTPHash = prevHash
	}
	// Report before answering, so the user sees it no later than the peer
	// learns it was accepted.
	switch {
	case held && !wasHeld:
		c.emit(Event{Type: EventHold})
	case !held && wasHeld:
		c.emit(Event{Type: EventResume})
	}
	respond(200, "OK", body)
	peer := netip.AddrPortFrom(offer.Addr.Unmap(), uint16(offer.Port))
	select {
	case c.ctrl <- func(st *mediaState) {
		st.held = held
		if !held && offer.Port != 0 {
			st.peer = peer
		}
	}:
	case <-c.ended:
	}
}

// reinvite sends a re-INVITE with m (RFC 3261 §14.1) and ACKs a 2xx.
func (c *Call) reinvite(ctx context.Context, m Media) (*sip.Response, error) {
	body, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	var target sip.Uri
	if c.cdlg != nil {
		target = c.cdlg.InviteResponse.Contact().Address
	} else {
		target = c.sdlg.InviteRequest.Contact().Address
	}
	req := sip.NewRequest(sip.INVITE, target)
	req.SetTransport(c.ua.transport)
	contact := c.ua.dua.ContactHDR
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	var res *sip.Response
	if c.cdlg != nil {
		res, err = c.cdlg.Do(ctx, req)
	} else {
		res, err = c.sdlg.Do(ctx, req)
	}
	if err != nil {
		return nil, fmt.Errorf("re-INVITE: %w", err)
	}
	if res.IsSuccess() {
		ack := sip.NewRequest(sip.ACK, target)
		ack.SetTransport(c.ua.transport)
		if c.cdlg != nil {
			err = c.cdlg.WriteRequest(ack)
		} else {
			err = c.sdlg.WriteRequest(ack)
		}
		if err != nil {
			return res, fmt.Errorf("re-INVITE ACK: %w", err)
		}
	}
	return res, nil
}

// Hold puts the call on hold (sendonly) or resumes it (sendrecv) with a
// re-INVITE that keeps the zrtp-hash (RFC 3264 §8.4).
func (c *Call) Hold(ctx context.Context, on bool) error {
	c.sigMu.Lock()
	m := c.local
	m.Version++
	m.Direction = SendRecv
	if on {
		m.Direction = SendOnly
	}
	c.local.Version = m.Version
	c.sigMu.Unlock()
	res, err := c.reinvite(ctx, m)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return fmt.Errorf("hold: refused: %d %s", res.StatusCode, res.Reason)
	}
	return nil
}
