// Package proxy is the cluster's SIP registrar and store-and-forward message
// proxy over TLS (RFC 3261, RFC 3428 MESSAGE). PhoneX devices authenticate
// with their device certificate (mutual TLS); standard SIP phones with
// per-device digest credentials. A MESSAGE is checked against the
// recipient's contact list, stored durably for every target device (the
// recipient's devices and the sender's other devices), answered 200, and
// then delivered to each registered device, each sender's copies in order
// and the senders taking turns; a copy is forgotten once the device has
// given a final answer for it, and retried with backoff until then.
package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/bus"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/metrics"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/server/presence"
	"github.com/phonex/phonex/internal/siplimit"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/throttle"
)

// Identity is an authenticated SIP peer.
type Identity struct {
	AccountID int64
	DeviceID  int64
	Account   string // user@domain
	Device    string
}

// Refusal is an authentication failure with its SIP answer.
type Refusal struct {
	Status     int
	Reason     string
	RetryAfter time.Duration // sent as Retry-After when set
}

func (r *Refusal) Error() string { return fmt.Sprintf("%d %s", r.Status, r.Reason) }

// Authenticator checks device certificates and finds digest credentials.
type Authenticator interface {
	Certificate(ctx context.Context, cert *x509.Certificate) (Identity, error)
	SIPCredential(ctx context.Context, username string) (Identity, []byte, error)
	// SIPAttempt counts a digest attempt of a device before its response is
	// checked, or refuses it with a Refusal while the device must wait or
	// is locked.
	SIPAttempt(ctx context.Context, deviceID int64) error
	SIPVerified(ctx context.Context, deviceID int64) error // a right response: attempts forgotten
}

// Config configures a Proxy.
type Config struct {
	Domain    string
	Store     store.Store
	Auth      Authenticator
	TLS       *tls.Config // server certificate; client certificates requested
	Log       *slog.Logger
	Rate      float64 // messages per second per sending account
	Burst     int
	MaxStored int64 // bytes waiting per recipient account
	MaxBody   int   // bytes per MESSAGE body
	NonceKey  []byte
	Limits    Limits // of the SIP listener
	// KeepTLS leaves every SIP connection with crypto/tls after its
	// handshake; otherwise TLS 1.3 connections are taken over by
	// internal/tlsrecord (listener.go).
	KeepTLS bool
	// Requests without a device certificate, per source address.
	UnauthRate  float64
	UnauthBurst int
	// Digest failures per source address; the account password policy.
	Attempts throttle.Policy
	// Presence is the presence agent; nil: the proxy makes its own.
	Presence *presence.Service
	// Calls learns when routed calls start and end (presence); may be nil.
	Calls CallObserver
	// RingTimeout is how long a call rings; DefaultRingTimeout if zero.
	RingTimeout time.Duration
	// Policies, when set, gives per-account limits over Rate, Burst,
	// MaxStored and the registration maximum (policy.go).
	Policies Policies
	// Metrics counts what the proxy does (metrics.go); may be nil.
	Metrics *metrics.Metrics
	// Federation links other clusters (federation.go); nil: none.
	Federation *federation.Service
	// Bus links the node to the others of its cluster (cluster.go); nil alone.
	Bus *bus.Bus
	// StoreFirst stores every copy before the sender's 200, even for a
	// device that is online and idle (cutthrough.go); otherwise such a
	// device gets the MESSAGE first.
	StoreFirst bool
}

// Defaults for the limits.
const (
	DefaultRate      = 50
	DefaultBurst     = 200
	DefaultMaxStored = 64 << 20
	DefaultMaxBody   = siplimit.MaxBody
	maxExpires       = 3600
	defaultExpires   = 600
)

// Proxy is a running registrar and message proxy.
type Proxy struct {
	cfg     Config
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	cli     *sipgo.Client
	ln      *peerListener
	phones  *peerListener // standard phones, no certificate requested (phones.go)
	log     *slog.Logger
	ctx     context.Context
	limits  *limiter
	unauth  *limiter
	nonces  nonceCounts
	guesses guesses
	routes  routes
	tags    *ids         // branches, tags and Call-IDs of the node's own SIP path (direct.go)
	direct  atomic.Int64 // MESSAGEs that path took (tests)
	runners *runners     // of delivery runs
	router  *router      // INVITE and dialogs
	// serving is closed once Serve has set up ln (tests wait for it).
	serving chan struct{}
	// sweepEvery is how often expired bindings are dropped.
	sweepEvery time.Duration

	mu       sync.Mutex
	bindings map[int64]*binding // by device id

	authMu sync.Mutex
	auth   map[string]authEntry // by connection source, for certificates

	pres     *presence.Service
	presence presenceState // presence.go

	fed     fedState     // federation.go
	cluster clusterState // cluster.go
}

// authEntry caches a certificate's check for one connection. The TLS
// handshake proved the key once; the device's state (revoked, disabled) is
// read again after authTTL, so a revocation takes effect within it.
type authEntry struct {
	cert *x509.Certificate
	id   Identity
	at   time.Time
}

const authTTL = time.Second

type binding struct {
	id       Identity
	source   string // host:port of the device's TLS connection
	contact  sip.Uri
	expires  time.Time
	running  bool
	pending  bool
	failures int         // transient failures in a row
	retryAt  time.Time   // no attempt before, after a transient failure
	retry    *time.Timer // the attempt at retryAt
	// answered is, by sender, the sequence number of the last copy the
	// device answered for good; forgets are the store writes forgetting
	// such copies. Only the device's delivery run uses them.
	answered map[string]int64
	forgets  *sync.WaitGroup
}

// Backoff of deliveries after a transient failure (no answer, or a device's
// answer that says the copy may pass later).
const (
	firstRetry = time.Second
	maxRetry   = time.Minute
)

func init() {
	// sipgo logs through a package-wide logger; the proxy logs what matters.
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
}

// New makes a proxy; Serve runs it.
func New(cfg Config) (*Proxy, error) {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.MaxStored <= 0 {
		cfg.MaxStored = DefaultMaxStored
	}
	if cfg.MaxBody <= 0 || cfg.MaxBody > siplimit.MaxBody {
		// Above the SIP stack's cap a body never arrives to be refused.
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.UnauthRate <= 0 {
		cfg.UnauthRate = DefaultUnauthRate
	}
	if cfg.UnauthBurst <= 0 {
		cfg.UnauthBurst = DefaultUnauthBurst
	}
	if cfg.Attempts.LockAfter <= 0 {
		cfg.Attempts = throttle.AccountDefault
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("phonexd"), sipgo.WithUserAgentHostname(cfg.Domain), sipgo.WithUserAgenTLSConfig(cfg.TLS))
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		return nil, err
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet), sipgo.WithClientHostname(cfg.Domain))
	if err != nil {
		return nil, err
	}
	p := &Proxy{cfg: cfg, ua: ua, srv: srv, cli: cli, log: cfg.Log, bindings: map[int64]*binding{}, limits: newLimiter(cfg.Rate, cfg.Burst),
		auth: map[string]authEntry{}, tags: newIDs(), sweepEvery: 30 * time.Second, runners: newRunners(runnerStay), serving: make(chan struct{}),
		unauth: newLimiter(cfg.UnauthRate, cfg.UnauthBurst), guesses: guesses{pol: cfg.Attempts}}
	p.pres = cfg.Presence
	p.initPresence()
	p.initCluster()
	srv.OnRegister(p.entry(p.onRegister))
	srv.OnMessage(p.entry(p.onMessage))
	p.router = newRouter(p)
	p.router.register(srv)
	srv.OnOptions(p.entry(func(req *sip.Request, tx sip.ServerTransaction) { p.respond(tx, req, 200, "OK", p.allowHeader()) }))
	srv.OnNoRoute(p.entry(p.notAllowed))
	return p, nil
}

// Serve accepts SIP over TLS on ln until ctx ends.
func (p *Proxy) Serve(ctx context.Context, ln net.Listener) error {
	p.ctx = ctx
	p.ln = newPeerListener(ln, p.cfg.TLS, p.cfg.Limits, !p.cfg.KeepTLS, p.log)
	p.ln.intercept = p.intercept
	close(p.serving)
	p.cfg.Metrics.Connections(metrics.KindDevice, p.ln.count)
	go func() {
		<-ctx.Done()
		p.ln.Close()
		p.ua.Close()
	}()
	go p.sweep(ctx)
	p.servePhones()
	go p.watchPresence(ctx)
	p.startFederation(ctx) // federation.go
	go p.runCluster(ctx)
	err := p.srv.ServeTLS(p.ln)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Proxy) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		p.log.Debug("sip respond failed", "err", err)
	}
}

// authenticate finds who sent req: the connection's certificate, or digest
// credentials for standard phones. A nil identity with nil error means a
// challenge was sent.
func (p *Proxy) authenticate(req *sip.Request, tx sip.ServerTransaction) (*Identity, bool) {
	src := req.Source()
	if cert := p.ln.peer(src); cert != nil {
		id, err := p.certIdentity(src, cert)
		if err != nil {
			p.refuse(tx, req, err)
			return nil, false
		}
		return id, true
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	id, ok := p.digest(ctx, req, tx)
	if !ok {
		return nil, false
	}
	return id, true
}

// certIdentity is the device whose certificate the connection from src
// presented in its handshake, checked against the store at most once per
// authTTL.
func (p *Proxy) certIdentity(src string, cert *x509.Certificate) (*Identity, error) {
	p.authMu.Lock()
	e, ok := p.auth[src]
	p.authMu.Unlock()
	if ok && e.cert == cert && time.Since(e.at) < authTTL {
		return &e.id, nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	id, err := p.cfg.Auth.Certificate(ctx, cert)
	if err != nil {
		p.authMu.Lock()
		delete(p.auth, src)
		p.authMu.Unlock()
		return nil, err
	}
	p.authMu.Lock()
	if len(p.auth) > 100000 {
		clear(p.auth)
	}
	p.auth[src] = authEntry{cert: cert, id: id, at: time.Now()}
	p.authMu.Unlock()
	return &id, nil
}

// refusalAnswer is the answer to a failed authentication.
func (p *Proxy) refusalAnswer(err error) reply {
	var r *Refusal
	if errors.As(err, &r) {
		return reply{code: r.Status, reason: r.Reason, hdrs: retryAfter(r.RetryAfter)}
	}
	p.log.Error("sip authentication failed", "err", err)
	return reply{code: 500, reason: "Server Internal Error"}
}

func (p *Proxy) refuse(tx sip.ServerTransaction, req *sip.Request, err error) {
	a := p.refusalAnswer(err)
	p.respond(tx, req, a.code, a.reason, a.hdrs...)
}

// accountOf reads user@domain of a SIP URI in this cluster's domain.
func (p *Proxy) accountOf(u sip.Uri) (ident.Account, error) {
	host := strings.ToLower(u.Host)
	a, err := ident.ParseAccount(u.User + "@" + host)
	if err != nil {
		return a, err
	}
	if a.Domain != p.cfg.Domain {
		return a, fmt.Errorf("%s is not in domain %s", a, p.cfg.Domain)
	}
	return a, nil
}

func (p *Proxy) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	id, ok := p.authenticate(req, tx)
	if !ok {
		return
	}
	to := req.To()
	if to == nil {
		p.respond(tx, req, 400, "Missing To")
		return
	}
	aor, err := p.accountOf(to.Address)
	if err != nil || aor.String() != id.Account {
		p.respond(tx, req, 403, "Forbidden: the address of record is not the authenticated identity")
		return
	}
	expires := defaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		if v, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && v >= 0 {
			expires = v
		}
	}
	contact := req.Contact()
	if contact != nil {
		if v, ok := contact.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				expires = n
			}
		}
	}
	expires = min(expires, maxExpires, int(p.limitsOf(p.ctx, id.Account).MaxExpires/time.Second))
	p.mu.Lock()
	if expires == 0 || contact == nil {
		delete(p.bindings, id.DeviceID)
		p.mu.Unlock()
		p.presenceUnregistered(id)
		p.keep(req.Source(), time.Now()) // idle again like any connection
		p.respond(tx, req, 200, "OK")
		return
	}
	b := p.bindings[id.DeviceID]
	if b == nil {
		b = &binding{}
		p.bindings[id.DeviceID] = b
	}
	if b.source != req.Source() {
		// A new connection: whatever failed on the old one may pass now.
		b.retryAt, b.failures = time.Time{}, 0
	}
	exp := time.Now().Add(time.Duration(expires) * time.Second)
	b.id, b.source, b.contact, b.expires = *id, req.Source(), contact.Address, exp
	p.mu.Unlock()
	p.keep(req.Source(), exp.Add(keepGrace))
	c := contact.Clone()
	c.Params.Add("expires", strconv.Itoa(expires))
	p.presenceRegistered(id, req.Source(), exp) // online once the 200 is seen
	p.respond(tx, req, 200, "OK", c)
	p.cfg.Metrics.Registered(p.connKind(req.Source()))
	p.log.Debug("registered", "device", id.Account+"/"+id.Device)
	p.held(id.DeviceID)
	p.kick(id.DeviceID)
}

func (p *Proxy) onMessage(req *sip.Request, stx sip.ServerTransaction) {
	tx := &outcomeTx{ServerTransaction: stx}
	defer p.countMessage(tx)
	if p.fromPeer(req, tx) { // federation.go
		return
	}
	id, ok := p.authenticate(req, tx)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	from := req.From()
	if from == nil {
		p.respond(tx, req, 400, "Missing From")
		return
	}
	if a, err := p.accountOf(from.Address); err != nil || a.String() != id.Account {
		p.respond(tx, req, 403, "Forbidden: From is not the authenticated identity")
		return
	}
	to, err := p.accountOf(req.Recipient)
	if err != nil {
		if !p.toPeer(ctx, req, tx, id) { // federation.go
			p.respond(tx, req, 404, "Not Found")
		}
		return
	}
	ctype := "text/plain"
	if h := req.ContentType(); h != nil {
		ctype = h.Value()
	}
	a := p.relayMessage(ctx, id, to, ctype, req.Body())
	p.respond(tx, req, a.code, a.reason, a.hdrs...)
}

// reply is the node's answer to a request: status, reason phrase and
// extra header fields.
type reply struct {
	code   int
	reason string
	hdrs   []sip.Header
}

// relayMessage takes a MESSAGE from an authenticated device of this
// cluster whose From was checked, for the local account to: it hands it to
// the target devices (cutThrough) or stores their copies, and returns the
// sender's answer. Both SIP paths use it: sipgo's (onMessage) and the
// node's own (direct.go).
func (p *Proxy) relayMessage(ctx context.Context, id *Identity, to ident.Account, ctype string, body []byte) reply {
	if len(body) == 0 {
		return reply{code: 400, reason: "Empty message"}
	}
	if len(body) > p.cfg.MaxBody {
		return reply{code: 513, reason: "Message Too Large"}
	}
	envelope := strings.HasPrefix(ctype, EnvelopeType)
	rt, err := p.routes.get(ctx, p.cfg.Store, id, to.String())
	limited := false
	var delivered map[int64]bool // devices that took it before any store
	for try := 0; ; try++ {
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return reply{code: 404, reason: "Not Found"}
			}
			return p.internalAnswer(err)
		}
		targets, phonesSkipped, code, reason := p.decide(rt, id, envelope)
		if code != 0 && rt.cached {
			// A refusal is never decided from the cache alone.
			rt, err = p.routes.read(ctx, p.cfg.Store, id, to.String())
			continue
		}
		if code == noDevice {
			return p.noDevice(ctx, rt.rcpt)
		}
		if code != 0 {
			return reply{code: code, reason: reason}
		}
		if !limited {
			limited = true
			sl := p.limitsOf(ctx, id.Account)
			if wait := p.limits.takeAt(id.Account, time.Now(), sl.Rate, float64(sl.Burst)); wait > 0 {
				return reply{code: 503, reason: "Rate limit exceeded", hdrs: []sip.Header{sip.NewHeader("Retry-After", strconv.Itoa(int(wait.Seconds())+1))}}
			}
		}
		if try == 0 && !p.cfg.StoreFirst {
			delivered = p.cutThrough(ctx, rt, id, ctype, body, targets)
		}
		// What was delivered stays delivered; the rest is stored as if it
		// had come alone.
		targets = slices.DeleteFunc(targets, func(t store.Target) bool { return delivered[t.DeviceID] })
		if len(targets) == 0 {
			var warn []sip.Header
			if phonesSkipped {
				warn = p.notForPhones(ctx, rt.rcpt)
			}
			p.cfg.Metrics.MessageAccepted(0) // every copy delivered, none stored
			return reply{code: 200, reason: "OK", hdrs: warn}
		}
		gen := rt.gen
		if try >= 2 {
			// Routing facts changing under every attempt: store with the
			// facts just read, checked as without a cache.
			gen = 0
		}
		_, err = p.cfg.Store.EnqueueMessage(ctx, store.Message{Sender: id.Account, SenderDevice: id.Device, Recipient: rt.rcpt.Name,
			ContentType: ctype, Body: body, Created: time.Now(), RouteGeneration: gen}, targets, p.limitsOf(ctx, rt.rcpt.Name).MaxStored)
		if errors.Is(err, store.ErrStaleRoute) {
			rt, err = p.routes.read(ctx, p.cfg.Store, id, to.String())
			continue
		}
		var full *store.StorageFullError
		switch {
		case errors.As(err, &full) && full.AccountID == rt.rcpt.ID:
			return reply{code: 480, reason: "Recipient storage full", hdrs: []sip.Header{sip.NewHeader("Retry-After", "60")}}
		case errors.As(err, &full):
			return reply{code: 480, reason: "Your storage is full: your other devices have too many undelivered copies", hdrs: []sip.Header{sip.NewHeader("Retry-After", "60")}}
		case err != nil:
			return p.internalAnswer(err)
		}
		var warn []sip.Header
		if phonesSkipped {
			warn = p.notForPhones(ctx, rt.rcpt)
		}
		// Answered by the caller after the kicks: a delivery run may start
		// before the sender has its 200, which changes nothing for it.
		p.cfg.Metrics.MessageAccepted(len(targets))
		ids := make([]int64, len(targets))
		for i, t := range targets {
			p.kick(t.DeviceID)
			ids[i] = t.DeviceID
		}
		p.wakeElsewhere(ids)
		return reply{code: 200, reason: "OK", hdrs: warn}
	}
}

// noDevice is decide's code for a message no device of the recipient can
// take; noDevice (the method) chooses the answer.
const noDevice = -1

// decide judges a message from its route: the targets and whether phones
// of the recipient were left out, or a SIP refusal (code and reason;
// noDevice when no device of the recipient can take it).
func (p *Proxy) decide(rt *route, from *Identity, envelope bool) ([]store.Target, bool, int, string) {
	switch rt.rcpt.Status {
	case store.StatusPending:
		return nil, false, 404, "Not Found"
	case store.StatusDisabled:
		return nil, false, 480, "Temporarily Unavailable"
	}
	// The whitelist: nothing is stored unless the recipient listed the
	// sender. An encrypted envelope also needs the sender to have listed the
	// recipient: the recipient's device reads the sender's keys, which the
	// cluster shows only to the sender's contacts, so a one-sided message
	// could never be opened.
	if rt.rcpt.Name != from.Account {
		if !rt.whitelisted {
			return nil, false, 403, "Not allowed: you are not on the recipient's contact list"
		}
		if envelope && !rt.listed {
			return nil, false, 403, "Not allowed: you have not added the recipient to your contacts"
		}
	}
	targets, phonesSkipped := p.targets(rt, from, !envelope)
	if !hasAccount(targets, rt.rcpt.ID) {
		// Storing only the sender's own copies would be a 200 for a
		// message the recipient never gets.
		return nil, false, noDevice, ""
	}
	return targets, phonesSkipped, 0, ""
}

// noDevice refuses a message no device of the recipient can take: for
// good (488) when only standard phones could and the message is encrypted,
// for now (480) when the account has no active device at all.
func (p *Proxy) noDevice(ctx context.Context, rcpt store.Account) reply {
	ds, err := p.cfg.Store.Devices(ctx, rcpt.ID)
	if err != nil {
		return p.internalAnswer(err)
	}
	for _, d := range ds {
		if d.Status == store.StatusActive {
			return reply{code: 488, reason: "Not Acceptable Here: the recipient has only standard phones, which cannot open encrypted messages"}
		}
	}
	return reply{code: 480, reason: "Temporarily Unavailable: the recipient has no active device"}
}

func hasAccount(ts []store.Target, accountID int64) bool {
	for _, t := range ts {
		if t.AccountID == accountID {
			return true
		}
	}
	return false
}

// targets are the recipient's active devices and the sender's other
// active devices, so a conversation shows on all of them.
// EnvelopeType is the content type of end-to-end encrypted PhoneX messages;
// standard SIP phones cannot open them and do not get copies.
const EnvelopeType = "application/vnd.phonex.envelope"

func (p *Proxy) targets(rt *route, from *Identity, toPhones bool) ([]store.Target, bool) {
	var out []store.Target
	phonesSkipped := false
	add := func(accountID int64, ds []store.DeviceRef, own bool) {
		for _, d := range ds {
			if d.ID == from.DeviceID {
				continue
			}
			// A standard phone cannot open an envelope, and would show a
			// copy of its own account's message as one from itself.
			if d.Suite == "sip" && (!toPhones || own) {
				phonesSkipped = phonesSkipped || !own
				continue
			}
			out = append(out, store.Target{DeviceID: d.ID, AccountID: accountID})
		}
	}
	add(rt.rcpt.ID, rt.rcptDevs, rt.rcpt.ID == from.AccountID)
	if rt.rcpt.ID != from.AccountID {
		add(from.AccountID, rt.senderDevs, true)
	}
	return out, phonesSkipped
}

// internalAnswer logs a failure of the node's own (a store error) and
// answers 500 for a MESSAGE.
func (p *Proxy) internalAnswer(err error) reply {
	p.log.Error("sip request failed", "method", "MESSAGE", "err", err)
	return reply{code: 500, reason: "Server Internal Error"}
}

func (p *Proxy) internal(tx sip.ServerTransaction, req *sip.Request, err error) {
	p.log.Error("sip request failed", "method", string(req.Method), "err", err)
	p.respond(tx, req, 500, "Server Internal Error")
}

// kick starts delivery to a device if it is registered and idle.
func (p *Proxy) kick(deviceID int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bindings[deviceID]
	if b == nil {
		return
	}
	if b.running || time.Now().Before(b.retryAt) {
		// A device that just deferred a copy is not pressed again before
		// its backoff ends, however many new copies arrive.
		b.pending = true
		return
	}
	b.running, b.pending = true, false
	p.runners.run(func() { p.deliver(deviceID) })
}

// release ends a delivery run (or a cut-through, which counts as one):
// after a failure the device's next run waits a backoff, otherwise a run
// starts at once if copies were stored meanwhile.
func (p *Proxy) release(deviceID int64, failed bool) {
	p.mu.Lock()
	b := p.bindings[deviceID]
	again := false
	if b != nil {
		b.running = false
		if failed {
			b.failures++
			wait := min(firstRetry<<min(b.failures-1, 10), maxRetry)
			if b.retry != nil {
				b.retry.Stop()
			}
			b.retryAt = time.Now().Add(wait)
			b.retry = time.AfterFunc(wait, func() { p.kick(deviceID) })
		} else {
			b.failures = 0
			again = b.pending
		}
	}
	p.mu.Unlock()
	if again {
		p.kick(deviceID)
	}
}

// deliver sends a device's stored copies until none is left or one is not
// taken for good. A copy is forgotten only on a final answer (final); after
// a transient failure delivery stops there, so order is kept, and resumes
// after a backoff.
//
// Copies answered for good are forgotten in the background, and until
// that commits they are skipped by sequence number: deliveries.seq only
// grows (AUTOINCREMENT), copies are stored by one writer at a time, and
// Pending returns each sender's copies in that order, so every copy of a
// sender at or below the last one of that sender answered was sent
// already. Delivery so never waits for a forget's commit (an fsync).
func (p *Proxy) deliver(deviceID int64) {
	failed := false
	defer func() { p.release(deviceID, failed) }()
	const page = 64
	stalled := false
	for p.ctx.Err() == nil {
		p.mu.Lock()
		b := p.bindings[deviceID]
		var snap binding
		if b != nil {
			b.pending = false
			if b.forgets == nil {
				b.forgets, b.answered = new(sync.WaitGroup), map[string]int64{}
			}
			snap = *b
		}
		p.mu.Unlock()
		if b == nil || time.Now().After(snap.expires) {
			return
		}
		ds, err := p.cfg.Store.Pending(p.ctx, deviceID, page)
		if err != nil {
			p.log.Error("read stored messages", "err", err)
			failed = true
			return
		}
		full := len(ds) == page
		fresh := ds[:0:0]
		for _, d := range ds {
			if d.Seq > snap.answered[d.Sender] {
				fresh = append(fresh, d)
			}
		}
		if !full {
			// The page holds every stored copy: a sender with none left
			// has no forget in flight either.
			p.mu.Lock()
			for sender := range snap.answered {
				if !slices.ContainsFunc(ds, func(d store.Delivery) bool { return d.Sender == sender }) {
					delete(snap.answered, sender)
				}
			}
			p.mu.Unlock()
		}
		ds = fresh
		if len(ds) == 0 {
			if full && !stalled {
				// A whole page of copies still being forgotten: read on
				// once they are gone (a forget that failed stays until
				// the device registers again).
				snap.forgets.Wait()
				stalled = true
				continue
			}
			return
		}
		stalled = false
		for _, d := range ds {
			code, err := p.send(snap, d)
			if err != nil {
				p.log.Debug("delivery failed; kept for later", "err", err)
				failed = true
				return
			}
			if !final(code) {
				p.log.Debug("device deferred a message; kept for later", "code", code)
				failed = true
				return
			}
			if code < 300 {
				p.cfg.Metrics.Delivered(d.Created)
			} else {
				// The device will never take this copy (it cannot be
				// opened, or it is not for it); keeping it would block
				// every copy behind it.
				p.log.Warn("device refused a message for good; dropped", "code", code)
			}
			p.mu.Lock()
			snap.answered[d.Sender] = max(snap.answered[d.Sender], d.Seq)
			p.mu.Unlock()
			// If the forget is lost in a crash, the device gets the copy
			// again and drops it as a duplicate.
			snap.forgets.Add(1)
			go func(seq int64) {
				defer snap.forgets.Done()
				if err := p.cfg.Store.Delivered(p.ctx, seq); err != nil {
					p.log.Error("forget delivered message", "err", err)
				}
			}(d.Seq)
		}
		if !full {
			// The read saw every stored copy; a copy stored since then
			// has kicked, and without a kick another read would only
			// return the copies just sent.
			p.mu.Lock()
			b := p.bindings[deviceID]
			more := b != nil && b.pending
			p.mu.Unlock()
			if !more {
				return
			}
		}
	}
}

// final reports whether a device's answer settles a copy: taken (2xx) or
// refused for good (3xx, 4xx, 6xx). A device answers 5xx, 408 or 480
// (RFC 3261 §21.4.9, §21.4.18) for what may pass later.
func final(code int) bool {
	switch {
	case code < 200:
		return false
	case code == 408, code == 480:
		return false
	case code >= 500 && code < 600:
		// 501 and 513 do not change with time.
		return code == 501 || code == 513
	}
	return true
}

// send delivers one stored copy over the device's own TLS connection.
func (p *Proxy) send(b binding, d store.Delivery) (int, error) {
	c := p.ln.conn(b.source)
	if c == nil {
		c = p.phones.conn(b.source)
	}
	if c != nil {
		return p.sendDirect(c, b, d)
	}
	req := sip.NewRequest(sip.MESSAGE, b.contact)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user(d.Sender), Host: senderHost(d.Sender, p.cfg.Domain)}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user(d.Recipient), Host: senderHost(d.Recipient, p.cfg.Domain)}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", fmt.Sprintf("<sip:%s@%s;gr=%s>", user(d.Sender), senderHost(d.Sender, p.cfg.Domain), d.SenderDevice)))
	req.AppendHeader(sip.NewHeader("Date", d.Created.UTC().Format(time.RFC1123)))
	ct := sip.ContentTypeHeader(d.ContentType)
	req.AppendHeader(&ct)
	req.SetBody(d.Body)
	req.SetTransport("TLS")
	req.SetDestination(b.source)
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	return res.StatusCode, nil
}

func user(account string) string {
	u, _, _ := strings.Cut(account, "@")
	return u
}

// sweep drops expired bindings.
func (p *Proxy) sweep(ctx context.Context) {
	t := time.NewTicker(p.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.mu.Lock()
			for id, b := range p.bindings {
				if now.After(b.expires) {
					if b.retry != nil {
						b.retry.Stop()
					}
					delete(p.bindings, id)
				}
			}
			p.mu.Unlock()
			p.nonces.sweep(now)
			p.guesses.sweep(now)
			p.sweepUnauth(now)
			p.router.sweepDialogs()
		}
	}
}

// Registered reports whether a device has a live binding (tests, metrics).
func (p *Proxy) Registered(deviceID int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.bindings[deviceID]
	return b != nil && time.Now().Before(b.expires)
}
