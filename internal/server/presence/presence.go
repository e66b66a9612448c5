// Package presence is the node's presence agent (RFC 3856 §6): it holds
// each account's devices as they are now (connected, what they published,
// in a call) and the subscriptions of watchers, composes one PIDF document
// per account (internal/pidf) and fans every change out to the watchers.
//
// Nothing is stored: the state lives in memory and is rebuilt as devices
// register and publish again after a restart. Who watches whom is never
// logged. Who may watch is decided by the caller (the SIP proxy checks
// mutual contacts before Subscribe); this package trusts what it is given.
package presence

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonex/phonex/internal/pidf"
)

// Errors callers branch on.
var (
	// ErrNoPublication: a refresh or change names an entity tag the
	// agent does not hold (RFC 3903 §6: answered 412).
	ErrNoPublication = errors.New("presence: no such publication")
)

// Limits.
const (
	MaxPublishExpires   = time.Hour
	MinPublishExpires   = 60 * time.Second
	MaxSubscribeExpires = time.Hour
	MinSubscribeExpires = 60 * time.Second
)

// DeviceInfo is what the cluster knows of a device from its enrollment:
// its capability strings and its certificate.
type DeviceInfo struct {
	Caps          []string
	CertHash      string
	CertNotBefore time.Time
}

// Sender delivers one NOTIFY of a subscription: the document and the
// Subscription-State value (RFC 6665 §8.2.3). It returns once the NOTIFY
// is sent, with a function that waits for the watcher's answer. An error
// of either ends the subscription.
type Sender func(ctx context.Context, body []byte, state string) (wait func() error, err error)

// Blocking makes a Sender of a function that sends and waits in one call.
func Blocking(f func(ctx context.Context, body []byte, state string) error) Sender {
	return func(ctx context.Context, body []byte, state string) (func() error, error) {
		err := f(ctx, body, state)
		return func() error { return nil }, err
	}
}

// Service is the presence agent of one node.
type Service struct {
	log *slog.Logger
	now func() time.Time
	ctx atomic.Pointer[context.Context] // bounds the NOTIFYs

	mu       sync.Mutex
	accounts map[string]*account
	etags    map[string]*publication

	// work hands subscriptions with a NOTIFY to send to the senders: a
	// fixed pool, whose stacks have grown to what sending takes, instead
	// of a goroutine per NOTIFY.
	work chan *Sub
}

// Senders: enough to keep a fan-out's NOTIFYs in flight while each waits
// for its answer; the queue holds a burst to every watcher of many
// accounts at once.
const (
	senders   = 256
	workQueue = 1 << 16
)

type account struct {
	devices  map[string]*device
	watchers map[*Sub]struct{}
	// The documents last fanned out: a change that shows nothing new
	// (a refresh, a device that only re-registered) sends nothing.
	public, own []byte
}

type device struct {
	info       DeviceInfo
	connected  bool
	pub        *publication
	calls      int
	since      time.Time // of the state it shows
	shownState pidf.State
	shownNote  string
}

type publication struct {
	etag    string
	account string
	device  string
	state   pidf.State
	note    string
	expires time.Time
}

// Sub is one subscription to an account's presence.
type Sub struct {
	s        *Service
	Watcher  string // account
	DeviceID int64  // the watching device
	Target   string
	expires  time.Time
	send     Sender

	mu      sync.Mutex
	body    []byte // the next document to send; nil when none
	state   string
	running bool
	ended   bool
}

// New makes an agent; Run runs its timers.
func New(log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{log: log, now: time.Now, accounts: map[string]*account{}, etags: map[string]*publication{},
		work: make(chan *Sub, workQueue)}
	bg := context.Background()
	s.ctx.Store(&bg)
	for range senders {
		go func() {
			for sub := range s.work {
				sub.run()
			}
		}()
	}
	return s
}

// Run sweeps what expired every interval until ctx ends; ctx also bounds
// the NOTIFYs sent from then on.
func (s *Service) Run(ctx context.Context, every time.Duration) {
	s.ctx.Store(&ctx)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.Sweep(now)
		}
	}
}

func (s *Service) account(name string) *account {
	a := s.accounts[name]
	if a == nil {
		a = &account{devices: map[string]*device{}, watchers: map[*Sub]struct{}{}}
		s.accounts[name] = a
	}
	return a
}

func (s *Service) device(acct, name string) *device {
	a := s.account(acct)
	d := a.devices[name]
	if d == nil {
		d = &device{shownState: pidf.Offline}
		a.devices[name] = d
	}
	return d
}

// forget drops an account that has nothing left to hold.
func (s *Service) forget(name string) {
	a := s.accounts[name]
	if a == nil || len(a.watchers) > 0 {
		return
	}
	for n, d := range a.devices {
		if !d.connected && d.pub == nil && d.calls == 0 {
			delete(a.devices, n)
		}
	}
	if len(a.devices) == 0 {
		delete(s.accounts, name)
	}
}

// visible is what watchers see of a device.
func (d *device) visible() (pidf.State, string) {
	if !d.connected {
		return pidf.Offline, ""
	}
	st, note := pidf.Online, ""
	if d.pub != nil {
		st, note = d.pub.state, d.pub.note
	}
	if st == pidf.Invisible {
		// Exactly what an offline device shows: no tuple, no note.
		return pidf.Offline, ""
	}
	if d.calls > 0 {
		st = pidf.OnCall
	}
	return st, note
}

// documents compose the account's document for watchers, and the one its
// own devices see (with invisible devices as they are).
func (s *Service) documents(name string) (public, own []byte) {
	a := s.accounts[name]
	pub := pidf.Document{Entity: "pres:" + name}
	self := pidf.Document{Entity: "pres:" + name}
	if a != nil {
		names := make([]string, 0, len(a.devices))
		for n := range a.devices {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			d := a.devices[n]
			st, note := d.visible()
			t := pidf.Tuple{Device: n, State: st, Note: note, Since: d.since, Caps: d.info.Caps,
				CertHash: d.info.CertHash, CertNotBefore: d.info.CertNotBefore}
			if st != pidf.Offline {
				pub.Tuples = append(pub.Tuples, t)
			}
			if d.connected && d.pub != nil && d.pub.state == pidf.Invisible {
				t.State, t.Note = pidf.Invisible, d.pub.note
			}
			if t.State != pidf.Offline {
				self.Tuples = append(self.Tuples, t)
			}
		}
	}
	var err error
	if public, err = pub.Marshal(); err != nil {
		s.log.Error("presence document", "err", err)
	}
	if own, err = self.Marshal(); err != nil {
		s.log.Error("presence document", "err", err)
	}
	return public, own
}

// changed records the shown state's time and fans the account's document
// out to its watchers.
func (s *Service) changed(name string) {
	a := s.accounts[name]
	if a == nil {
		return
	}
	now := s.now()
	for _, d := range a.devices {
		st, note := d.visible()
		if d.connected && d.pub != nil && d.pub.state == pidf.Invisible {
			st = pidf.Invisible
		}
		if st != d.shownState || note != d.shownNote {
			d.shownState, d.shownNote, d.since = st, note, now
		}
	}
	if len(a.watchers) == 0 {
		a.public, a.own = nil, nil
		s.forget(name)
		return
	}
	public, own := s.documents(name)
	newPublic, newOwn := !bytes.Equal(public, a.public), !bytes.Equal(own, a.own)
	a.public, a.own = public, own
	for w := range a.watchers {
		if w.Watcher == name && newOwn {
			w.queue(own, w.activeState(now), false)
		} else if w.Watcher != name && newPublic {
			w.queue(public, w.activeState(now), false)
		}
	}
}

// Connected marks a device as reachable (registered over a live
// connection) until Disconnected.
func (s *Service) Connected(acct, dev string, info DeviceInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.device(acct, dev)
	if d.connected && slices.Equal(d.info.Caps, info.Caps) && d.info.CertHash == info.CertHash && d.info.CertNotBefore.Equal(info.CertNotBefore) {
		return
	}
	d.connected, d.info = true, info
	s.changed(acct)
}

// Disconnected marks a device as gone: its registration ended or expired,
// or its connection dropped.
func (s *Service) Disconnected(acct, dev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[acct]
	if a == nil || a.devices[dev] == nil || !a.devices[dev].connected {
		return
	}
	// The publication stays until it expires: a device that comes back
	// shows what it chose (invisible included) from its first moment.
	a.devices[dev].connected = false
	s.changed(acct)
}

// Publish creates (ifMatch empty), refreshes or modifies (ifMatch set) a
// device's publication (RFC 3903 §4). A refresh without a new state keeps
// the state (hasState false). expires 0 removes it. It returns the new
// entity tag.
func (s *Service) Publish(acct, dev, ifMatch string, state pidf.State, note string, hasState bool, expires time.Duration) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *publication
	if ifMatch != "" {
		p = s.etags[ifMatch]
		if p == nil || p.account != acct || p.device != dev {
			return "", ErrNoPublication
		}
		delete(s.etags, p.etag)
	} else if !hasState {
		return "", ErrNoPublication
	}
	d := s.device(acct, dev)
	if expires == 0 {
		if d.pub == p {
			d.pub = nil
		}
		s.changed(acct)
		return "", nil
	}
	if p == nil {
		if d.pub != nil {
			// One publication per device: a new one replaces the old.
			delete(s.etags, d.pub.etag)
		}
		p = &publication{account: acct, device: dev}
	}
	if hasState {
		p.state, p.note = state, note
	}
	p.etag = newETag()
	p.expires = s.now().Add(expires)
	s.etags[p.etag] = p
	d.pub = p
	s.changed(acct)
	return p.etag, nil
}

func newETag() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// CallStarted and CallEnded follow the calls the node routes: an account
// shows "on a call" while any of its devices is in one. They have the shape
// of the proxy's call observer.
func (s *Service) CallStarted(acct, dev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.device(acct, dev).calls++
	s.changed(acct)
}

// CallEnded: see CallStarted.
func (s *Service) CallEnded(acct, dev string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[acct]
	if a == nil || a.devices[dev] == nil || a.devices[dev].calls == 0 {
		return
	}
	a.devices[dev].calls--
	s.changed(acct)
}

// Subscribe adds a watcher of target and sends it the current document
// at once (RFC 6665 §4.2.1.2). A device holds one subscription per target:
// a new one replaces the old, which ends without a NOTIFY.
func (s *Service) Subscribe(watcher string, deviceID int64, target string, expires time.Duration, send Sender) *Sub {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.account(target)
	for w := range a.watchers {
		if w.DeviceID == deviceID && w.Watcher == watcher {
			delete(a.watchers, w)
			w.end()
		}
	}
	now := s.now()
	sub := &Sub{s: s, Watcher: watcher, DeviceID: deviceID, Target: target, expires: now.Add(expires), send: send}
	a.watchers[sub] = struct{}{}
	public, own := s.documents(target)
	a.public, a.own = public, own
	body := public
	if watcher == target {
		body = own
	}
	sub.queue(body, sub.activeState(now), false)
	return sub
}

// Fetch returns target's document once, without a subscription
// (RFC 6665 §4.4.3: a SUBSCRIBE with Expires 0).
func (s *Service) Fetch(watcher, target string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	public, own := s.documents(target)
	s.forget(target)
	if watcher == target {
		return own
	}
	return public
}

// Refresh extends a subscription; expires 0 ends it with a final NOTIFY
// of the current document (RFC 6665 §4.2.1.4). It reports false for a
// subscription that has ended.
func (s *Service) Refresh(sub *Sub, expires time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[sub.Target]
	if a == nil {
		return false
	}
	if _, ok := a.watchers[sub]; !ok {
		return false
	}
	now := s.now()
	public, own := s.documents(sub.Target)
	body := public
	if sub.Watcher == sub.Target {
		body = own
	}
	if expires == 0 {
		delete(a.watchers, sub)
		sub.queue(body, "terminated;reason=timeout", true)
		s.forget(sub.Target)
		return true
	}
	sub.expires = now.Add(expires)
	sub.queue(body, sub.activeState(now), false)
	return true
}

// EndWatching ends, at once, the subscriptions between two accounts that
// are no longer mutual contacts, in both directions, each with a final
// NOTIFY that shows the other account offline (RFC 6665 §4.2.2, reason
// "rejected": the authorization is gone).
func (s *Service) EndWatching(owner, contact string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pair := range [][2]string{{owner, contact}, {contact, owner}} {
		watcher, target := pair[0], pair[1]
		a := s.accounts[target]
		if a == nil {
			continue
		}
		offline, _ := (&pidf.Document{Entity: "pres:" + target}).Marshal()
		for w := range a.watchers {
			if w.Watcher == watcher {
				delete(a.watchers, w)
				w.queue(offline, "terminated;reason=rejected", true)
			}
		}
		s.forget(target)
	}
}

// Reject ends one subscription whose watcher may no longer watch, with a
// final NOTIFY that shows the target offline (RFC 6665 §4.2.2, reason
// "rejected").
func (s *Service) Reject(sub *Sub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[sub.Target]
	if a == nil {
		return
	}
	if _, ok := a.watchers[sub]; !ok {
		return
	}
	delete(a.watchers, sub)
	offline, _ := (&pidf.Document{Entity: "pres:" + sub.Target}).Marshal()
	sub.queue(offline, "terminated;reason=rejected", true)
	s.forget(sub.Target)
}

// EndDevice ends the subscriptions a device holds, with a final NOTIFY
// (RFC 6665 §4.2.2, reason "deactivated": it may subscribe again): the
// device is gone (its registration ended or expired, its connection
// dropped), or revoked, which a refused registration refresh shows.
func (s *Service) EndDevice(deviceID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, a := range s.accounts {
		for w := range a.watchers {
			if w.DeviceID != deviceID {
				continue
			}
			delete(a.watchers, w)
			public, own := s.documents(name)
			body := public
			if w.Watcher == name {
				body = own
			}
			w.queue(body, "terminated;reason=deactivated", true)
		}
		s.forget(name)
	}
}

// Sweep ends what expired by now: publications (the device shows online
// again, as if it had not published) and subscriptions (a final NOTIFY,
// reason timeout).
func (s *Service) Sweep(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dirty := map[string]bool{}
	for tag, p := range s.etags {
		if now.After(p.expires) {
			delete(s.etags, tag)
			if a := s.accounts[p.account]; a != nil && a.devices[p.device] != nil && a.devices[p.device].pub == p {
				a.devices[p.device].pub = nil
			}
			dirty[p.account] = true
		}
	}
	for name, a := range s.accounts {
		for w := range a.watchers {
			if now.After(w.expires) {
				delete(a.watchers, w)
				public, own := s.documents(name)
				body := public
				if w.Watcher == name {
					body = own
				}
				w.queue(body, "terminated;reason=timeout", true)
			}
		}
		if !dirty[name] {
			s.forget(name)
		}
	}
	for name := range dirty {
		s.changed(name)
	}
}

// Counts reports how many subscriptions and connected devices the agent
// holds (tests, metrics).
func (s *Service) Counts() (subs, devices int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.accounts {
		subs += len(a.watchers)
		for _, d := range a.devices {
			if d.connected {
				devices++
			}
		}
	}
	return subs, devices
}

// Ended reports whether the subscription is over.
func (sub *Sub) Ended() bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.ended
}

func (sub *Sub) activeState(now time.Time) string {
	left := max(int(sub.expires.Sub(now).Seconds()), 0)
	return "active;expires=" + itoa(left)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// queue sets the next NOTIFY of a subscription. NOTIFYs of one
// subscription go one at a time, in order; a document superseded before
// it left is not sent (RFC 6665 §4.2.2 lets a notifier skip states).
func (sub *Sub) queue(body []byte, state string, final bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.ended {
		return
	}
	sub.body, sub.state = body, state
	if final {
		sub.ended = true
	}
	if !sub.running {
		sub.running = true
		select {
		case sub.s.work <- sub:
		default:
			// The queue is full: never wait here, under the locks.
			go sub.run()
		}
	}
}

// end stops a subscription without a NOTIFY.
func (sub *Sub) end() {
	sub.mu.Lock()
	sub.ended, sub.body = true, nil
	sub.mu.Unlock()
}

// run sends the subscription's next NOTIFY on a sender of the pool and
// waits for the answer on a goroutine of its own, so the pool's senders
// are not held for the round trip: a fan-out has every NOTIFY in flight at
// once. After the answer, a NOTIFY queued meanwhile goes next, in order.
func (sub *Sub) run() {
	sub.mu.Lock()
	body, state := sub.body, sub.state
	sub.body = nil
	if body == nil {
		sub.running = false
		sub.mu.Unlock()
		return
	}
	sub.mu.Unlock()
	ctx, cancel := context.WithTimeout(*sub.s.ctx.Load(), 10*time.Second)
	wait, err := sub.send(ctx, body, state)
	if err != nil {
		cancel()
		sub.failed()
		return
	}
	go func() {
		err := wait()
		cancel()
		if err != nil {
			sub.failed()
			return
		}
		sub.mu.Lock()
		if sub.body == nil {
			sub.running = false
			sub.mu.Unlock()
			return
		}
		sub.mu.Unlock()
		select {
		case sub.s.work <- sub:
		default:
			sub.run()
		}
	}()
}

// failed ends a subscription whose watcher is gone or refused a NOTIFY
// (RFC 6665 §4.1.3: a 481, or a failed delivery, ends it).
func (sub *Sub) failed() {
	sub.s.drop(sub)
	sub.end()
	sub.mu.Lock()
	sub.running = false
	sub.mu.Unlock()
}

func (s *Service) drop(sub *Sub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.accounts[sub.Target]; a != nil {
		delete(a.watchers, sub)
		s.forget(sub.Target)
	}
}
