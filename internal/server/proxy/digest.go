package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/phonex/phonex/internal/metrics"
	"github.com/phonex/phonex/internal/throttle"
)

// Digest authentication (RFC 3261 §22.4, RFC 2617 with qop=auth) for
// standard SIP phones, which have per-device credentials and never the
// account password. A nonce is a timestamp, random bytes and their HMAC, so
// the node needs no state to issue one; the nonce count of each nonce in
// use is tracked so a response is accepted once (RFC 2617 §3.2.2).

const nonceLife = 5 * time.Minute

// maxNonces bounds the nonce counts tracked; beyond it a client is
// challenged again, with a fresh nonce.
const maxNonces = 200000

// HA1 is MD5(username:realm:password) (RFC 2617 §3.2.2.2); the server
// stores it instead of the password.
func HA1(username, realm, password string) []byte {
	h := md5.Sum([]byte(username + ":" + realm + ":" + password))
	out := make([]byte, hex.EncodedLen(len(h)))
	hex.Encode(out, h[:])
	return out
}

func (p *Proxy) nonce(now time.Time) string {
	b := make([]byte, 16, 32)
	binary.BigEndian.PutUint64(b, uint64(now.Unix()))
	rand.Read(b[8:16])
	m := hmac.New(sha256.New, p.cfg.NonceKey)
	m.Write(b)
	b = append(b, m.Sum(nil)[:16]...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Proxy) nonceValid(n string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 32 {
		return false
	}
	m := hmac.New(sha256.New, p.cfg.NonceKey)
	m.Write(b[:16])
	if !hmac.Equal(m.Sum(nil)[:16], b[16:]) {
		return false
	}
	t := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return now.Sub(t) < nonceLife && t.Sub(now) < time.Minute
}

// nonceCounts remembers the highest nonce count accepted per nonce.
type nonceCounts struct {
	mu sync.Mutex
	m  map[string]nonceUse
}

type nonceUse struct {
	nc      int
	expires time.Time
}

// use accepts nc for nonce if it is above every count accepted before
// (RFC 2617 §3.2.2: "the server can detect request replays by maintaining
// its own copy of this count"). A response without qop has no count and
// is accepted once per nonce.
func (n *nonceCounts) use(nonce string, nc int, now time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[string]nonceUse{}
	}
	u, seen := n.m[nonce]
	if seen && nc <= u.nc {
		return false
	}
	if !seen && len(n.m) >= maxNonces {
		n.sweepLocked(now)
		if len(n.m) >= maxNonces {
			return false
		}
	}
	n.m[nonce] = nonceUse{nc: nc, expires: now.Add(nonceLife + time.Minute)}
	return true
}

func (n *nonceCounts) sweep(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sweepLocked(now)
}

func (n *nonceCounts) sweepLocked(now time.Time) {
	for k, u := range n.m {
		if now.After(u.expires) {
			delete(n.m, k)
		}
	}
}

// guesses throttles digest failures per source address with the account
// password policy. A source is never locked for good, since no operator
// command names one: past the lock threshold it waits the longest delay.
// Failures are logged once per burst with the source and the account, for
// an operator's fail2ban.
type guesses struct {
	pol throttle.Policy
	mu  sync.Mutex
	m   map[string]*guessState
}

type guessState struct {
	throttle.State
	unlogged int
	loggedAt time.Time
}

const maxSources = 100000

// begin counts an attempt from src before it is checked, so parallel
// guesses cannot pass together, and returns how long src must wait
// instead (the attempt is then not counted).
func (g *guesses) begin(src string, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]*guessState{}
	}
	s := g.m[src]
	if s == nil {
		if len(g.m) >= maxSources {
			g.sweepLocked(now)
		}
		s = &guessState{}
		g.m[src] = s
	}
	v := g.pol.Check(s.State, now)
	if v.Locked {
		v.RetryAfter = s.Last.Add(g.pol.MaxDelay).Sub(now)
	}
	if v.RetryAfter > 0 {
		return v.RetryAfter
	}
	s.Failures++
	s.Last = now
	return 0
}

// succeeded takes back the attempt counted by begin.
func (g *guesses) succeeded(src string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s := g.m[src]; s != nil && s.Failures > 0 {
		s.Failures--
	}
}

// failed confirms the attempt counted by begin as a failure and reports
// whether to log it: the first failure of a burst, then at most one line a
// minute with the count in between.
func (g *guesses) failed(src string, now time.Time) (log bool, count int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.m[src]
	if s == nil {
		return true, 1
	}
	s.unlogged++
	if now.Sub(s.loggedAt) < time.Minute {
		return false, 0
	}
	count, s.unlogged, s.loggedAt = s.unlogged, 0, now
	return true, count
}

func (g *guesses) sweep(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sweepLocked(now)
}

// sweepLocked forgets sources quiet for twice the longest delay.
func (g *guesses) sweepLocked(now time.Time) {
	for k, s := range g.m {
		if now.Sub(s.Last) > 2*g.pol.MaxDelay {
			delete(g.m, k)
		}
	}
}

// challengeValue is a WWW-Authenticate value with a fresh nonce, for SIP
// (RFC 3261 §22.4) and HTTP (RFC 7616 §3.3, MD5 and qop=auth) alike.
func (p *Proxy) challengeValue(stale bool) string {
	c := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=MD5, qop="auth"`, p.cfg.Domain, p.nonce(time.Now()))
	if stale {
		c += ", stale=true"
	}
	return c
}

func (p *Proxy) challenge(tx sip.ServerTransaction, req *sip.Request, stale bool) {
	p.respond(tx, req, 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", p.challengeValue(stale)))
}

var errDigest = errors.New("digest authentication failed")

// checkDigest verifies credentials against the stored HA1
// (RFC 2617 §3.2.2.1, with HA2 of §3.2.2.3 for qop=auth).
func checkDigest(cr *digest.Credentials, method string, ha1 []byte) error {
	if cr.Algorithm != "" && !strings.EqualFold(cr.Algorithm, "MD5") {
		return fmt.Errorf("%w: algorithm %s", errDigest, cr.Algorithm)
	}
	h2 := md5.Sum([]byte(method + ":" + cr.URI))
	ha2 := hex.EncodeToString(h2[:])
	var in string
	switch cr.QOP {
	case "auth":
		in = fmt.Sprintf("%s:%s:%08x:%s:auth:%s", ha1, cr.Nonce, cr.Nc, cr.Cnonce, ha2)
	case "":
		in = fmt.Sprintf("%s:%s:%s", ha1, cr.Nonce, ha2)
	default:
		return fmt.Errorf("%w: qop %s", errDigest, cr.QOP)
	}
	want := md5.Sum([]byte(in))
	if !hmac.Equal([]byte(hex.EncodeToString(want[:])), []byte(strings.ToLower(cr.Response))) {
		return errDigest
	}
	return nil
}

// sameURI reports whether the digest-uri names the Request-URI (RFC 2617
// §3.2.2.5: the server checks they are the same, so a response cannot be
// replayed against another target). Both are read by the same parser, so
// equivalent spellings compare equal.
func sameURI(digestURI string, req sip.Uri) bool {
	var u sip.Uri
	if err := sip.ParseUri(digestURI, &u); err != nil {
		return false
	}
	return u.String() == req.String()
}

// digestVerdict is the outcome of a digest check: an identity, or the
// answer to send.
type digestVerdict struct {
	status     int
	reason     string
	challenge  bool // send a 401 with a fresh nonce
	stale      bool
	retryAfter time.Duration
}

// verifyDigest checks req's digest credentials; it answers nothing itself,
// so the fuzz target runs exactly this check.
func (p *Proxy) verifyDigest(ctx context.Context, req *sip.Request) (*Identity, digestVerdict) {
	h := req.GetHeader("Authorization")
	if h == nil {
		return nil, digestVerdict{challenge: true}
	}
	return p.verifyCredentials(ctx, h.Value(), string(req.Method), func(u string) bool { return sameURI(u, req.Recipient) }, "Request-URI", req.Source())
}

// verifyCredentials checks an Authorization header's digest response for
// method, its uri accepted by uriOK (target names it in a refusal), sent
// from source (host:port).
func (p *Proxy) verifyCredentials(ctx context.Context, auth, method string, uriOK func(string) bool, target, source string) (*Identity, digestVerdict) {
	cr, err := digest.ParseCredentials(auth)
	if err != nil || cr.Realm != p.cfg.Domain || cr.Username == "" {
		return nil, digestVerdict{status: 400, reason: "Bad Authorization header"}
	}
	if !uriOK(cr.URI) {
		return nil, digestVerdict{status: 400, reason: "Bad Authorization header: uri is not the " + target}
	}
	now := time.Now()
	if !p.nonceValid(cr.Nonce, now) {
		return nil, digestVerdict{challenge: true, stale: true}
	}
	src := sourceOf(source)
	if wait := p.guesses.begin(src, now); wait > 0 {
		return nil, digestVerdict{status: 503, reason: "Service Unavailable: too many failed attempts", retryAfter: wait}
	}
	creds, err := p.credentials(ctx, cr.Username)
	var id Identity
	if err == nil {
		// The attempt counts against the login name, kept with its first
		// phone: every phone it may name is tried with one count.
		if err = p.cfg.Auth.SIPAttempt(ctx, creds[0].ID.DeviceID); err == nil {
			err = errDigest
			for _, c := range creds {
				if err = checkDigest(cr, method, c.HA1); err == nil {
					id = c.ID
					break
				}
			}
		}
	}
	if err != nil {
		var r *Refusal
		if !errors.As(err, &r) && !errors.Is(err, errDigest) {
			p.guesses.succeeded(src)
			p.log.Error("sip credential lookup failed", "err", err)
			return nil, digestVerdict{status: 500, reason: "Server Internal Error"}
		}
		if r != nil && r.RetryAfter > 0 {
			// The device waits: the response was not checked, so it is
			// no guess of this source.
			p.guesses.succeeded(src)
			return nil, digestVerdict{status: r.Status, reason: r.Reason, retryAfter: r.RetryAfter}
		}
		if r == nil {
			p.cfg.Metrics.AuthFailed(metrics.AuthSIP)
		}
		if log, n := p.guesses.failed(src, now); log {
			// The exact address, for fail2ban.
			p.log.Warn("sip digest authentication failed", "source", hostOf(source), "account", cr.Username, "failures", n)
		}
		if r != nil {
			return nil, digestVerdict{status: r.Status, reason: r.Reason, retryAfter: r.RetryAfter}
		}
		return nil, digestVerdict{status: 403, reason: "Forbidden"}
	}
	p.guesses.succeeded(src)
	// Replay detection only after the response verified: a forged count
	// must not use up a nonce.
	nc := cr.Nc
	if cr.QOP == "" {
		nc = 0
	}
	if !p.nonces.use(cr.Nonce, nc, now) {
		return nil, digestVerdict{challenge: true, stale: true}
	}
	if err := p.cfg.Auth.SIPVerified(ctx, creds[0].ID.DeviceID); err != nil {
		p.log.Error("reset sip attempts", "err", err)
	}
	return &id, digestVerdict{}
}

// Credential is one phone a digest username may name, with its HA1.
type Credential struct {
	ID  Identity
	HA1 []byte
}

// PhoneLogins is implemented by an Authenticator whose digest usernames
// may name several phones: the address-of-record user ("alice") is every
// phone's login name and the password tells the phones apart.
type PhoneLogins interface {
	SIPCredentials(ctx context.Context, username string) ([]Credential, error)
}

// credentials are the phones username may name, at least one, or the
// Authenticator's refusal.
func (p *Proxy) credentials(ctx context.Context, username string) ([]Credential, error) {
	if pl, ok := p.cfg.Auth.(PhoneLogins); ok {
		cs, err := pl.SIPCredentials(ctx, username)
		if err == nil && len(cs) == 0 {
			err = &Refusal{Status: 403, Reason: "Forbidden"}
		}
		return cs, err
	}
	id, ha1, err := p.cfg.Auth.SIPCredential(ctx, username)
	if err != nil {
		return nil, err
	}
	return []Credential{{ID: id, HA1: ha1}}, nil
}

func (p *Proxy) digest(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (*Identity, bool) {
	id, v := p.verifyDigest(ctx, req)
	switch {
	case id != nil:
		return id, true
	case v.challenge:
		p.challenge(tx, req, v.stale)
	default:
		p.respond(tx, req, v.status, v.reason, retryAfter(v.retryAfter)...)
	}
	return nil, false
}

// retryAfter is the Retry-After header for a wait (RFC 3261 §20.33), if any.
func retryAfter(d time.Duration) []sip.Header {
	if d <= 0 {
		return nil
	}
	return []sip.Header{sip.NewHeader("Retry-After", fmt.Sprint(int(d.Seconds())+1))}
}

// DigestResult is the outcome of VerifyHTTPDigest when it names nobody:
// the HTTP status to answer, why, the WWW-Authenticate value when a new
// challenge is due, and a wait.
type DigestResult struct {
	Status     int
	Reason     string
	Challenge  string
	RetryAfter time.Duration
}

// VerifyHTTPDigest checks an HTTP request's Authorization header (RFC 7616
// §3.4 with MD5 and qop=auth; a phone's SIP password in its own realm,
// the cluster's domain) the way SIP requests are checked: the digest uri
// must be the request target, each nonce count is accepted once, and
// failures are throttled per source and per login name. An empty auth is
// answered with a challenge.
func (p *Proxy) VerifyHTTPDigest(ctx context.Context, auth, method, target, source string) (*Identity, DigestResult) {
	if auth == "" {
		return nil, DigestResult{Status: 401, Reason: "digest authentication required", Challenge: p.challengeValue(false)}
	}
	id, v := p.verifyCredentials(ctx, auth, method, func(u string) bool { return u == target }, "request target", source)
	switch {
	case id != nil:
		return id, DigestResult{}
	case v.challenge:
		return nil, DigestResult{Status: 401, Reason: "digest nonce expired or used", Challenge: p.challengeValue(v.stale)}
	}
	return nil, DigestResult{Status: v.status, Reason: v.reason, RetryAfter: v.retryAfter}
}
