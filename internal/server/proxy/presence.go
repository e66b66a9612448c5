package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/bus"
	"github.com/phonex/phonex/internal/pidf"
	"github.com/phonex/phonex/internal/server/presence"
)

// Presence over SIP SIMPLE: devices PUBLISH their state (RFC 3903) and
// SUBSCRIBE to their contacts' presence (RFC 6665, event package
// "presence" of RFC 3856); the node's presence agent (server/presence)
// composes the documents and this file carries them in NOTIFYs over each
// watcher's own TLS connection.
//
// Only mutual contacts may watch each other, checked before anything is
// kept; everyone else gets the one answer a non-existent account gets.

// presenceEvery is how often dead connections, expired registrations,
// publications and subscriptions are looked for: well within the 60 s a
// vanished device may keep showing online. Tests shorten it.
var presenceEvery = 5 * time.Second

// presenceState is the proxy's side of presence: which devices are
// connected over which connection, and the dialogs of subscriptions.
type presenceState struct {
	every   time.Duration // presenceEvery when the proxy was made
	mu      sync.Mutex
	devices map[int64]*presenceDevice // by device id
	dialogs map[string]*subDialog     // by Call-ID and our tag
	// send is p.sendNotify; the memory test counts the state without sockets.
	send func(ctx context.Context, dl *subDialog, body []byte, state string) (func() error, error)
}

type presenceDevice struct {
	account, device string
	source          string
	expires         time.Time
}

// subDialog is what NOTIFYs of one subscription need (RFC 6665 §4.2.2).
type subDialog struct {
	sub      *presence.Sub
	deviceID int64
	callID   string
	ourTag   string
	their    string // the watcher's From, as it sent it (with its tag)
	target   sip.Uri
	contact  sip.Uri // the watcher's Contact
	source   string
	cseq     atomic.Uint32
	mu       sync.Mutex // guards contact and source, which a refresh may move
}

// Presence is the node's presence agent: the call router reports calls to
// it, the contact API ends watching when a contact is removed.
func (p *Proxy) Presence() *presence.Service { return p.pres }

func (p *Proxy) initPresence() {
	if p.pres == nil {
		p.pres = presence.New(p.log)
	}
	p.presence = presenceState{every: presenceEvery, devices: map[int64]*presenceDevice{}, dialogs: map[string]*subDialog{}, send: p.sendNotify}
	p.srv.OnPublish(p.entry(p.onPublish))
	p.srv.OnSubscribe(p.entry(p.onSubscribe))
}

// presenceRegistered follows a device's registration: connected until it
// ends, expires, or its connection drops.
func (p *Proxy) presenceRegistered(id *Identity, source string, expires time.Time) {
	ps := &p.presence
	ps.mu.Lock()
	d := ps.devices[id.DeviceID]
	fresh := d == nil || d.source != source
	if d == nil {
		d = &presenceDevice{account: id.Account, device: id.Device}
		ps.devices[id.DeviceID] = d
	}
	d.source, d.expires = source, expires
	ps.mu.Unlock()
	if !fresh {
		return
	}
	// The certificate and capabilities are read once per connection: a
	// renewed certificate comes with a new connection.
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	var info presence.DeviceInfo
	if dev, err := p.cfg.Store.DeviceByName(ctx, id.Account, id.Device); err == nil {
		info = deviceInfo(dev.Cert, dev.Caps)
	} else {
		p.log.Warn("presence: device record", "err", err)
	}
	p.pres.Connected(id.Account, id.Device, info)
	p.sharePresence(connectedChange(id, info, expires))
}

// deviceInfo is the presence view of a device record: its capability
// strings and the first 64 bits of SHA-256 over its certificate's public
// key (the key fingerprint devices pin), with the certificate's start.
func deviceInfo(certDER []byte, caps string) presence.DeviceInfo {
	var info presence.DeviceInfo
	for c := range strings.SplitSeq(caps, ",") {
		if c = strings.TrimSpace(c); c != "" && len(info.Caps) < pidf.MaxCaps {
			info.Caps = append(info.Caps, c)
		}
	}
	if cert, err := x509.ParseCertificate(certDER); err == nil {
		h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		info.CertHash = hex.EncodeToString(h[:])[:pidf.CertHashLen]
		info.CertNotBefore = cert.NotBefore.UTC()
	}
	return info
}

func (p *Proxy) presenceUnregistered(id *Identity) {
	ps := &p.presence
	ps.mu.Lock()
	_, ok := ps.devices[id.DeviceID]
	delete(ps.devices, id.DeviceID)
	ps.mu.Unlock()
	if ok {
		p.pres.Disconnected(id.Account, id.Device)
		p.sharePresence(bus.Presence{Change: bus.ChangeDisconnected, Account: id.Account, Device: id.Device})
		p.pres.EndDevice(id.DeviceID)
	}
}

// watchPresence turns devices offline whose connection dropped or whose
// registration expired, and forgets the dialogs of ended subscriptions.
func (p *Proxy) watchPresence(ctx context.Context) {
	go p.pres.Run(ctx, p.presence.every)
	t := time.NewTicker(p.presence.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			p.presenceSweep(now)
		}
	}
}

func (p *Proxy) presenceSweep(now time.Time) {
	ps := &p.presence
	gone := map[int64]*presenceDevice{}
	ps.mu.Lock()
	for id, d := range ps.devices {
		if now.After(d.expires) || !p.connOpen(d.source) {
			gone[id] = d
			delete(ps.devices, id)
		}
	}
	for k, dl := range ps.dialogs {
		if dl.sub.Ended() {
			delete(ps.dialogs, k)
		}
	}
	ps.mu.Unlock()
	for id, d := range gone {
		p.pres.Disconnected(d.account, d.device)
		p.sharePresence(bus.Presence{Change: bus.ChangeDisconnected, Account: d.account, Device: d.device})
		// What it watched ends too: a revoked device, whose refreshes
		// are refused, watches nothing after its registration expires.
		p.pres.EndDevice(id)
	}
}

// connOpen reports whether the connection from addr, on either listener,
// is still up.
func (p *Proxy) connOpen(addr string) bool {
	return p.ln.open(addr) || (p.phones != nil && p.phones.open(addr))
}

// open reports whether the connection from addr is still up.
func (l *peerListener) open(addr string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[addr] != nil
}

// eventIs checks the Event header names the presence package (RFC 6665
// §8.2.1: parameters follow a semicolon).
func eventIs(req *sip.Request, pkg string) bool {
	h := req.GetHeader("Event")
	if h == nil {
		return false
	}
	name, _, _ := strings.Cut(h.Value(), ";")
	return strings.EqualFold(strings.TrimSpace(name), pkg)
}

// expiresOf reads Expires: def when absent, clamped to max; a value under
// min (but 0) is answered 423 by the caller (RFC 3903 §6 step 5, RFC 6665
// §4.2.1.1).
func expiresOf(req *sip.Request, def, least, most time.Duration) (time.Duration, bool, error) {
	h := req.GetHeader("Expires")
	if h == nil {
		return def, true, nil
	}
	n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("bad Expires %q", h.Value())
	}
	e := time.Duration(n) * time.Second
	if e > 0 && e < least {
		return e, false, nil
	}
	return min(e, most), true, nil
}

func minExpires(d time.Duration) sip.Header {
	return sip.NewHeader("Min-Expires", strconv.Itoa(int(d.Seconds())))
}

func (p *Proxy) onPublish(req *sip.Request, tx sip.ServerTransaction) {
	id, ok := p.authenticate(req, tx)
	if !ok {
		return
	}
	if !eventIs(req, "presence") {
		p.respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", "presence"))
		return
	}
	if a, err := p.accountOf(req.Recipient); err != nil || a.String() != id.Account {
		p.respond(tx, req, 403, "Forbidden: a device publishes only its own presence")
		return
	}
	exp, ok, err := expiresOf(req, presence.MaxPublishExpires, presence.MinPublishExpires, presence.MaxPublishExpires)
	if err != nil {
		p.respond(tx, req, 400, err.Error())
		return
	}
	if !ok {
		p.respond(tx, req, 423, "Interval Too Brief", minExpires(presence.MinPublishExpires))
		return
	}
	ifMatch := ""
	if h := req.GetHeader("SIP-If-Match"); h != nil {
		ifMatch = strings.TrimSpace(h.Value())
	}
	var state pidf.State
	var note string
	body := req.Body()
	hasState := len(body) > 0
	if hasState {
		if ct := req.ContentType(); ct == nil || !strings.EqualFold(strings.TrimSpace(strings.Split(ct.Value(), ";")[0]), pidf.ContentType) {
			p.respond(tx, req, 415, "Unsupported Media Type", sip.NewHeader("Accept", pidf.ContentType))
			return
		}
		doc, err := pidf.Parse(body)
		if err != nil || len(doc.Tuples) == 0 {
			p.respond(tx, req, 400, "Bad presence document")
			return
		}
		// The device's own tuple; a phone's tuple id is its own choice.
		t := doc.Tuples[0]
		for _, x := range doc.Tuples {
			if x.Device == id.Device {
				t = x
			}
		}
		state, note = t.State, t.Note
		switch state {
		case pidf.Offline:
			// A phone that says it is closed chooses to look offline.
			state = pidf.Invisible
		case pidf.OnCall:
			// Calls are the node's to report.
			state = pidf.Busy
		}
	} else if ifMatch == "" {
		// RFC 3903 §6 step 4: an initial PUBLISH carries a document.
		p.respond(tx, req, 400, "Missing presence document")
		return
	}
	etag, err := p.pres.Publish(id.Account, id.Device, ifMatch, state, note, hasState, exp)
	if errors.Is(err, presence.ErrNoPublication) {
		p.respond(tx, req, 412, "Conditional Request Failed")
		return
	}
	if err != nil {
		p.internal(tx, req, err)
		return
	}
	p.sharePresence(bus.Presence{Change: bus.ChangePublished, Account: id.Account, Device: id.Device, State: string(state), Note: note,
		HasState: hasState, Expires: exp.Milliseconds()})
	hdrs := []sip.Header{sip.NewHeader("Expires", strconv.Itoa(int(exp.Seconds())))}
	if etag != "" {
		hdrs = append(hdrs, sip.NewHeader("SIP-ETag", etag))
	}
	p.respond(tx, req, 200, "OK", hdrs...)
}

func dialogKey(callID, ourTag string) string { return callID + "\x00" + ourTag }

func (p *Proxy) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	if p.subscribeFromPeer(req, tx) { // federation_presence.go
		return
	}
	id, ok := p.authenticate(req, tx)
	if !ok {
		return
	}
	p.subscribe(req, tx, id)
}

// subscribe handles the SUBSCRIBE of an authenticated watcher: a device
// of this cluster, or one of a peer's (federation_presence.go).
func (p *Proxy) subscribe(req *sip.Request, tx sip.ServerTransaction, id *Identity) {
	if !eventIs(req, "presence") {
		p.respond(tx, req, 489, "Bad Event", sip.NewHeader("Allow-Events", "presence"))
		return
	}
	from, to, callID := req.From(), req.To(), req.CallID()
	if from == nil || to == nil || callID == nil {
		p.respond(tx, req, 400, "Missing From, To or Call-ID")
		return
	}
	fromTag, _ := from.Params.Get("tag")
	if fromTag == "" {
		p.respond(tx, req, 400, "Missing From tag")
		return
	}
	exp, ok, err := expiresOf(req, presence.MaxSubscribeExpires, presence.MinSubscribeExpires, presence.MaxSubscribeExpires)
	if err != nil {
		p.respond(tx, req, 400, err.Error())
		return
	}
	if !ok {
		p.respond(tx, req, 423, "Interval Too Brief", minExpires(presence.MinSubscribeExpires))
		return
	}
	if toTag, _ := to.Params.Get("tag"); toTag != "" {
		if p.refreshPeerSubscription(req, tx, id, dialogKey(callID.Value(), toTag), exp) { // federation_presence.go
			return
		}
		p.refreshSubscription(req, tx, id, dialogKey(callID.Value(), toTag), exp)
		return
	}
	if p.subscribeToPeer(req, tx, id, exp) { // federation_presence.go
		return
	}
	target, allowed := p.mayWatch(req, tx, id)
	if !allowed {
		return
	}
	contact := req.Contact()
	if contact == nil {
		p.respond(tx, req, 400, "Missing Contact")
		return
	}
	dl := &subDialog{deviceID: id.DeviceID, callID: callID.Value(), ourTag: sip.GenerateTagN(16), their: from.Value(),
		target: sip.Uri{Scheme: "sip", User: user(target), Host: p.cfg.Domain}, contact: *contact.Address.Clone(), source: req.Source()}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if rt := res.To(); rt != nil {
		rt.Params.Add("tag", dl.ourTag)
	}
	res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(exp.Seconds()))))
	res.AppendHeader(&sip.ContactHeader{Address: dl.target})
	if err := tx.Respond(res); err != nil {
		p.log.Debug("sip respond failed", "err", err)
		return
	}
	if exp == 0 {
		// A fetch: one NOTIFY, no subscription (RFC 6665 §4.4.3).
		body := p.pres.Fetch(id.Account, target)
		go func() {
			ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
			defer cancel()
			if err := p.notify(ctx, dl, body, "terminated;reason=timeout"); err != nil {
				p.log.Debug("presence fetch not delivered", "err", err)
			}
		}()
		return
	}
	// The dialog is known before the first NOTIFY can be answered.
	ps := &p.presence
	ps.mu.Lock()
	ps.dialogs[dialogKey(dl.callID, dl.ourTag)] = dl
	send := ps.send
	dl.sub = p.pres.Subscribe(id.Account, id.DeviceID, target, exp, func(ctx context.Context, body []byte, state string) (func() error, error) {
		return send(ctx, dl, body, state)
	})
	ps.mu.Unlock()
}

// mayWatch decides a new subscription before anything is kept: a device
// watches its own account and the accounts that list it as it lists them.
// Every refusal is the same 403, so a non-contact learns nothing, not even
// whether the account exists.
func (p *Proxy) mayWatch(req *sip.Request, tx sip.ServerTransaction, id *Identity) (string, bool) {
	a, err := p.accountOf(req.Recipient)
	target := a.String()
	if err == nil && target == id.Account {
		return target, true
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	allowed := err == nil
	if allowed {
		// Both look-ups always run, so the answer takes as long either way.
		theirs, err1 := p.cfg.Store.HasContact(ctx, target, id.Account)
		ours, err2 := p.cfg.Store.HasContact(ctx, id.Account, target)
		if err := errors.Join(err1, err2); err != nil {
			p.internal(tx, req, err)
			return "", false
		}
		allowed = theirs && (ours || id.AccountID < 0) // a remote watcher's own list is its cluster's to check
	}
	if !allowed {
		p.respond(tx, req, 403, "Forbidden")
		return "", false
	}
	return target, true
}

// refreshSubscription handles a SUBSCRIBE inside a dialog: a refresh, or
// an unsubscribe with Expires 0 (RFC 6665 §4.1.2.2, §4.1.2.3). An unknown
// dialog (after a restart of the node) is 481, and the device subscribes
// anew.
func (p *Proxy) refreshSubscription(req *sip.Request, tx sip.ServerTransaction, id *Identity, key string, exp time.Duration) {
	ps := &p.presence
	ps.mu.Lock()
	dl := ps.dialogs[key]
	if dl != nil && exp == 0 {
		delete(ps.dialogs, key)
	}
	ps.mu.Unlock()
	if dl == nil || dl.deviceID != id.DeviceID || dl.sub.Ended() {
		p.respond(tx, req, 481, "Subscription Does Not Exist")
		return
	}
	// Still mutual contacts? A contact removed where the node could not
	// see it (the admin command, another process) ends the watching here,
	// at the latest with the next refresh.
	if dl.sub.Watcher != dl.sub.Target {
		if _, ok := p.mayWatch(req, tx, id); !ok {
			p.pres.Reject(dl.sub)
			return
		}
	}
	if c := req.Contact(); c != nil {
		dl.mu.Lock()
		dl.contact, dl.source = *c.Address.Clone(), req.Source()
		dl.mu.Unlock()
	}
	p.respond(tx, req, 200, "OK", sip.NewHeader("Expires", strconv.Itoa(int(exp.Seconds()))))
	if !p.pres.Refresh(dl.sub, exp) {
		p.log.Debug("presence subscription ended while refreshed")
	}
}

// notify sends one NOTIFY of a subscription over the watcher's connection
// and waits for the answer.
func (p *Proxy) notify(ctx context.Context, dl *subDialog, body []byte, state string) error {
	wait, err := p.sendNotify(ctx, dl, body, state)
	if err != nil {
		return err
	}
	return wait()
}

// sendNotify sends one NOTIFY and returns a function that waits for the
// watcher's final answer (any 2xx keeps the subscription).
func (p *Proxy) sendNotify(ctx context.Context, dl *subDialog, body []byte, state string) (func() error, error) {
	dl.mu.Lock()
	contact, source := dl.contact, dl.source
	dl.mu.Unlock()
	req := sip.NewRequest(sip.NOTIFY, contact)
	from := &sip.FromHeader{Address: dl.target, Params: sip.NewParams()}
	from.Params.Add("tag", dl.ourTag)
	req.AppendHeader(from)
	req.AppendHeader(sip.NewHeader("To", dl.their))
	cid := sip.CallIDHeader(dl.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: dl.cseq.Add(1), MethodName: sip.NOTIFY})
	req.AppendHeader(&sip.ContactHeader{Address: dl.target})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	ct := sip.ContentTypeHeader(pidf.ContentType)
	req.AppendHeader(&ct)
	req.SetBody(body)
	req.SetTransport("TLS")
	req.SetDestination(source)
	tx, err := p.cli.TransactionRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	return func() error {
		defer tx.Terminate()
		for {
			select {
			case res := <-tx.Responses():
				if res.IsProvisional() {
					continue
				}
				if res.StatusCode/100 != 2 {
					return fmt.Errorf("watcher answered %d", res.StatusCode)
				}
				return nil
			case <-tx.Done():
				return tx.Err()
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}, nil
}

// EndWatching ends the subscriptions between two accounts that stopped
// being mutual contacts, with a final NOTIFY showing the other offline.
func (p *Proxy) EndWatching(owner, contact string) { p.pres.EndWatching(owner, contact) }
