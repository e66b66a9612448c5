package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/pidf"
)

// Presence over SIP SIMPLE: while Listen runs, the device PUBLISHes the
// state the user chose (RFC 3903) and SUBSCRIBEs to every contact (RFC 6665
// with the presence package of RFC 3856); the cluster lets only mutual
// contacts watch each other. A contact's NOTIFY carries one tuple per
// online device with a short hash of its certificate's key: a hash this
// device has not pinned makes it fetch the contact's devices again (at
// most once per refetchEvery), which verifies them against the CA and the
// pins and raises new_device or key_changed at once, before any message.

// EventPresence is the event of a contact's changed presence.
const EventPresence = "presence"

// PresenceInfo is what an account shows: its most available device's
// state and note ("oncall" while any device is in a call), since when, and
// which devices are online.
type PresenceInfo struct {
	State   string    `json:"state"`
	Note    string    `json:"note,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	Devices []string  `json:"devices"`
}

// DevicePresence is one device of this account as the cluster shows it to
// the account's own devices.
type DevicePresence struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Note  string    `json:"note,omitempty"`
	Since time.Time `json:"since,omitzero"`
	Caps  []string  `json:"caps,omitempty"`
}

// OwnPresence is this device's chosen state and every online device of the
// account.
type OwnPresence struct {
	State   string           `json:"state"` // chosen on this device
	Note    string           `json:"note,omitempty"`
	Devices []DevicePresence `json:"devices"`
}

const (
	kvPresence       = "presence/self" // JSON {state, note} chosen on this device
	publishExpires   = 600             // s; refreshed with every registration
	subscribeExpires = 600             // s; refreshed at half-time
	refetchEvery     = 30 * time.Second
	fetchTimeout     = 5 * time.Second
)

type chosen struct {
	State pidf.State `json:"state"`
	Note  string     `json:"note,omitempty"`
}

// SetPresence chooses what this device shows: online, away, busy, dnd or
// invisible (offline to everyone, still reachable), with a note. A running
// Listen, in this process or another, publishes it within a second.
func (p *Profile) SetPresence(ctx context.Context, state, note string) error {
	st, err := pidf.ParseState(state)
	if err != nil {
		return err
	}
	note = strings.TrimSpace(note)
	if len(note) > pidf.MaxNote {
		return fmt.Errorf("presence note of %d bytes: at most %d", len(note), pidf.MaxNote)
	}
	b, _ := json.Marshal(chosen{State: st, Note: note})
	return kvPut(ctx, p.db.db, kvPresence, string(b))
}

func (p *Profile) chosenPresence(ctx context.Context) (chosen, error) {
	v, ok, err := kvGet(ctx, p.db.db, kvPresence)
	if err != nil || !ok {
		return chosen{State: pidf.Online}, err
	}
	var c chosen
	if err := json.Unmarshal([]byte(v), &c); err != nil {
		return chosen{State: pidf.Online}, nil
	}
	return c, nil
}

// Presence returns the state chosen on this device and the account's
// devices as the cluster shows them now (invisible ones included).
func (p *Profile) Presence(ctx context.Context) (OwnPresence, error) {
	c, err := p.chosenPresence(ctx)
	if err != nil {
		return OwnPresence{}, err
	}
	out := OwnPresence{State: string(c.State), Note: c.Note, Devices: []DevicePresence{}}
	docs, err := p.fetchPresence(ctx, []ident.Account{p.Device.Account})
	if err != nil {
		return out, err
	}
	if d := docs[p.Device.Account.String()]; d != nil {
		for _, t := range d.Tuples {
			out.Devices = append(out.Devices, DevicePresence{Name: t.Device, State: string(t.State), Note: t.Note, Since: t.Since, Caps: t.Caps})
		}
	}
	return out, nil
}

// PresenceOf returns the presence of contacts as the cluster shows it now;
// a contact that is not mutual shows offline, like one that is.
func (p *Profile) PresenceOf(ctx context.Context, users []string) (map[string]PresenceInfo, error) {
	var accts []ident.Account
	for _, u := range users {
		a, err := ident.ParseAccount(u)
		if err != nil {
			return nil, err
		}
		accts = append(accts, a)
	}
	docs, err := p.fetchPresence(ctx, accts)
	if err != nil {
		return nil, err
	}
	out := map[string]PresenceInfo{}
	for _, a := range accts {
		d := docs[a.String()]
		if d == nil {
			d = &pidf.Document{}
		}
		out[a.String()] = info(d.Aggregate())
	}
	return out, nil
}

func info(a pidf.Account) PresenceInfo {
	return PresenceInfo{State: string(a.State), Note: a.Note, Since: a.Since, Devices: a.Devices}
}

// fetchPresence gets each account's document once (RFC 6665 §4.4.3: a
// SUBSCRIBE with Expires 0 is answered with one NOTIFY) over one link. A
// refused fetch leaves the account out.
func (p *Profile) fetchPresence(ctx context.Context, accts []ident.Account) (map[string]*pidf.Document, error) {
	if len(accts) == 0 {
		return map[string]*pidf.Document{}, nil
	}
	var me api.Me
	if err := p.c.call(ctx, "GET", api.PathMe, nil, &me); err != nil {
		return nil, err
	}
	m := &messenger{p: p, sipAddr: me.SIP}
	link, err := m.dial()
	if err != nil {
		return nil, err
	}
	defer link.close()
	w := newWatcher(p, link, func(Event) {})
	link.mu.Lock()
	link.onNotify = w.onNotify
	link.mu.Unlock()
	out := map[string]*pidf.Document{}
	for _, a := range accts {
		s := w.add(a)
		s.once = make(chan *pidf.Document, 1)
		if err := w.subscribe(ctx, s, 0); err != nil {
			var se *SIPError
			if errors.As(err, &se) && se.Code == 403 {
				continue
			}
			return nil, err
		}
		select {
		case d := <-s.once:
			out[a.String()] = d
		case <-time.After(fetchTimeout):
			return nil, fmt.Errorf("presence of %s: %w: no NOTIFY", a, ErrUnreachable)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, nil
}

// watcher is the presence side of a running Listen: the publication of
// this device and one subscription per contact.
type watcher struct {
	p    *Profile
	emit func(Event)

	mu         sync.Mutex
	link       *sipLink
	etag       string
	published  chosen
	subs       map[string]*watch // by Call-ID
	byUser     map[string]*watch
	fetched    map[string]time.Time // last refetch of a contact's devices
	refetching map[string]bool      // a refetch is waiting or running
	seen       map[string]string    // device → certificate hash and capabilities last shown
}

// watch is one subscription (RFC 6665 §4.1): its dialog and what it showed.
type watch struct {
	acct    ident.Account
	callID  string
	fromTag string
	toTag   string
	cseq    uint32
	renewAt time.Time
	ended   bool // terminated by the cluster: subscribe again when allowed
	last    *PresenceInfo
	once    chan *pidf.Document // a fetch waits here
}

func newWatcher(p *Profile, link *sipLink, emit func(Event)) *watcher {
	return &watcher{p: p, link: link, emit: emit, subs: map[string]*watch{}, byUser: map[string]*watch{},
		fetched: map[string]time.Time{}, refetching: map[string]bool{}, seen: map[string]string{}}
}

func (w *watcher) setLink(l *sipLink) {
	w.mu.Lock()
	w.link = l
	w.mu.Unlock()
}

func (w *watcher) add(a ident.Account) *watch {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := &watch{acct: a, callID: sip.GenerateTagN(24), fromTag: sip.GenerateTagN(12)}
	w.subs[s.callID] = s
	if old := w.byUser[a.String()]; old != nil {
		delete(w.subs, old.callID)
	}
	w.byUser[a.String()] = s
	return s
}

func (w *watcher) uri(a ident.Account) sip.Uri {
	return sip.Uri{Scheme: "sip", User: a.User, Host: a.Domain}
}

// publish sends this device's chosen state, or refreshes the publication
// when nothing changed. A refresh the cluster does not know (it restarted)
// is answered 412 (RFC 3903 §6): the state is published afresh and lost
// reports true, so subscriptions are made again too.
func (w *watcher) publish(ctx context.Context) (lost bool, err error) {
	c, err := w.p.chosenPresence(ctx)
	if err != nil {
		return false, err
	}
	w.mu.Lock()
	etag, same, link := w.etag, w.published == c, w.link
	w.mu.Unlock()
	var body []byte
	if !same || etag == "" {
		body, err = (&pidf.Document{Entity: "pres:" + w.p.Device.Account.String(), Tuples: []pidf.Tuple{{Device: w.p.Device.Name,
			State: c.State, Note: c.Note, Since: w.p.now()}}}).Marshal()
		if err != nil {
			return false, err
		}
	}
	newTag, err := link.publish(ctx, etag, body, publishExpires)
	var se *SIPError
	if errors.As(err, &se) && se.Code == 412 {
		lost = true
		body, _ = (&pidf.Document{Entity: "pres:" + w.p.Device.Account.String(), Tuples: []pidf.Tuple{{Device: w.p.Device.Name,
			State: c.State, Note: c.Note, Since: w.p.now()}}}).Marshal()
		newTag, err = link.publish(ctx, "", body, publishExpires)
	}
	if err != nil {
		return lost, err
	}
	w.mu.Lock()
	w.etag, w.published = newTag, c
	w.mu.Unlock()
	return lost, nil
}

// subscribeAll subscribes to every contact not yet watched (all of them
// with force, after a restart of the cluster or a new connection), and
// renews the subscriptions due.
func (w *watcher) subscribeAll(ctx context.Context, force bool) error {
	var entries []api.Contact
	if err := w.p.c.call(ctx, "GET", api.PathContacts, nil, &entries); err != nil {
		return err
	}
	now := w.p.now()
	listed := map[string]bool{}
	for _, e := range entries {
		a, err := ident.ParseAccount(e.User)
		if err != nil {
			continue
		}
		listed[a.String()] = true
		w.mu.Lock()
		s := w.byUser[a.String()]
		w.mu.Unlock()
		if s != nil && !force && !s.ended && now.Before(s.renewAt) {
			continue
		}
		if s == nil || force || s.ended {
			last := (*PresenceInfo)(nil)
			if s != nil {
				last = s.last
			}
			s = w.add(a)
			s.last = last
		}
		if err := w.subscribe(ctx, s, subscribeExpires); err != nil {
			var se *SIPError
			if errors.As(err, &se) && se.Code == 481 {
				// The cluster forgot the dialog: a new one.
				s = w.add(a)
				err = w.subscribe(ctx, s, subscribeExpires)
			}
			if err != nil {
				w.p.log.Debug("presence subscription failed", "err", err)
				s.renewAt = now.Add(time.Minute)
			}
		}
	}
	// A contact removed here: its subscription ended at the cluster.
	w.mu.Lock()
	for u, s := range w.byUser {
		if !listed[u] {
			delete(w.byUser, u)
			delete(w.subs, s.callID)
		}
	}
	w.mu.Unlock()
	return nil
}

// subscribe sends the SUBSCRIBE of s: a new dialog, a refresh inside it,
// or with expires 0 a fetch or an unsubscribe.
func (w *watcher) subscribe(ctx context.Context, s *watch, expires int) error {
	w.mu.Lock()
	s.cseq++
	callID, fromTag, toTag, cseq, link := s.callID, s.fromTag, s.toTag, s.cseq, w.link
	w.mu.Unlock()
	req := sip.NewRequest(sip.SUBSCRIBE, w.uri(s.acct))
	from := &sip.FromHeader{Address: w.uri(w.p.Device.Account), Params: sip.NewParams()}
	from.Params.Add("tag", fromTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: w.uri(s.acct), Params: sip.NewParams()}
	if toTag != "" {
		to.Params.Add("tag", toTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.SUBSCRIBE})
	contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: w.p.Device.Account.User, Host: w.p.Device.Account.Domain,
		UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	contact.Address.UriParams.Add("transport", "tls")
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Accept", pidf.ContentType))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	link.prepare(req)
	res, err := link.do(ctx, req)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return &SIPError{Code: res.StatusCode, Reason: res.Reason}
	}
	granted := expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			granted = n
		}
	}
	w.mu.Lock()
	if t, ok := res.To().Params.Get("tag"); ok && s.toTag == "" {
		s.toTag = t
	}
	s.ended = false
	s.renewAt = w.p.now().Add(time.Duration(granted) * time.Second / 2)
	w.mu.Unlock()
	return nil
}

// onNotify handles a NOTIFY of one of the subscriptions (RFC 6665 §4.1.3):
// 481 for a dialog this device does not hold.
func (w *watcher) onNotify(req *sip.Request) (int, string) {
	cid := req.CallID()
	if cid == nil {
		return 400, "Missing Call-ID"
	}
	w.mu.Lock()
	s := w.subs[cid.Value()]
	w.mu.Unlock()
	if s == nil {
		return 481, "Subscription Does Not Exist"
	}
	doc, err := pidf.Parse(req.Body())
	if err != nil || (doc.Entity != "pres:"+s.acct.String() && doc.Entity != "sip:"+s.acct.String()) {
		return 400, "Bad presence document"
	}
	state := ""
	if h := req.GetHeader("Subscription-State"); h != nil {
		state = h.Value()
	}
	if s.once != nil {
		select {
		case s.once <- doc:
		default:
		}
		return 200, "OK"
	}
	now := info(doc.Aggregate())
	w.mu.Lock()
	if strings.HasPrefix(state, "terminated") {
		s.ended = true
	}
	changed := s.last == nil || s.last.State != now.State || s.last.Note != now.Note || !slices.Equal(s.last.Devices, now.Devices)
	s.last = &now
	w.mu.Unlock()
	if changed {
		at := now
		w.emit(Event{Type: EventPresence, Peer: s.acct.String(), Time: w.p.now(), Presence: &at})
	}
	w.checkDevices(s.acct, doc)
	return 200, "OK"
}

// checkDevices looks for a device whose certificate hash is not pinned here
// or whose capabilities changed, and then fetches the contact's devices
// again, at most once per refetchEvery, in the background.
func (w *watcher) checkDevices(acct ident.Account, doc *pidf.Document) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stale := false
	w.mu.Lock()
	for _, t := range doc.Tuples {
		if t.CertHash == "" {
			continue // a standard phone: no certificate
		}
		key := acct.String() + "/" + t.Device
		shown := t.CertHash + " " + strings.Join(t.Caps, ",")
		if w.seen[key] != shown {
			w.seen[key] = shown
			var sha string
			err := w.p.db.db.QueryRowContext(ctx, `SELECT cert_sha FROM pins WHERE device=?`, key).Scan(&sha)
			if err != nil || !strings.HasPrefix(sha, t.CertHash) {
				stale = true
			}
		}
	}
	var wait time.Duration
	if stale {
		if w.refetching[acct.String()] {
			stale = false // one is on its way and will look at every device
		} else {
			wait = max(refetchEvery-w.p.now().Sub(w.fetched[acct.String()]), 0)
			w.refetching[acct.String()] = true
		}
	}
	w.mu.Unlock()
	if stale {
		go w.refetch(acct, wait)
	}
}

// refetch fetches a contact's devices after wait (the rate limit): each
// is verified against the CA and its pin, and a new or changed one raises
// its notice now.
func (w *watcher) refetch(acct ident.Account, wait time.Duration) {
	time.Sleep(wait)
	w.mu.Lock()
	w.fetched[acct.String()] = w.p.now()
	delete(w.refetching, acct.String())
	w.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ds, err := w.p.bundles(ctx, acct)
	if err != nil {
		w.p.log.Debug("presence: fetching a contact's devices failed", "err", err)
		return
	}
	for _, d := range ds {
		switch d.pin {
		case pinNew:
			w.emit(noticeEvent(NoticeNewDevice, d.id, w.p.now()))
		case pinChanged:
			w.emit(noticeEvent(NoticeKeyChanged, d.id, w.p.now()))
		}
	}
}

// publish sends a PUBLISH (RFC 3903 §4): body nil refreshes ifMatch.
func (l *sipLink) publish(ctx context.Context, ifMatch string, body []byte, expires int) (string, error) {
	req := sip.NewRequest(sip.PUBLISH, l.uri(l.account))
	from := &sip.FromHeader{Address: l.uri(l.account), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: l.uri(l.account), Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", "presence"))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	if ifMatch != "" {
		req.AppendHeader(sip.NewHeader("SIP-If-Match", ifMatch))
	}
	if body != nil {
		ct := sip.ContentTypeHeader(pidf.ContentType)
		req.AppendHeader(&ct)
		req.SetBody(body)
	}
	l.prepare(req)
	res, err := l.do(ctx, req)
	if err != nil {
		return "", fmt.Errorf("publish presence: %w", err)
	}
	if res.StatusCode/100 != 2 {
		return "", &SIPError{Code: res.StatusCode, Reason: res.Reason}
	}
	if h := res.GetHeader("SIP-ETag"); h != nil {
		return strings.TrimSpace(h.Value()), nil
	}
	return "", nil
}

// tick publishes a state chosen since the last look (by this process or
// another on the same profile).
func (w *watcher) tick(ctx context.Context) {
	c, err := w.p.chosenPresence(ctx)
	if err != nil {
		return
	}
	w.mu.Lock()
	same := w.published == c && w.etag != ""
	w.mu.Unlock()
	if same {
		return
	}
	if _, err := w.publish(ctx); err != nil {
		w.p.log.Debug("presence not published", "err", err)
	}
}
