package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/amp"
	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/ratchet"
	"github.com/phonex/phonex/internal/siplimit"
	"github.com/phonex/phonex/internal/stp"
)

// Message states, as 'phonex inbox' shows them.
const (
	StateQueued    = "queued"    // outgoing, not yet accepted by the cluster
	StateSent      = "sent"      // accepted by the cluster (delivered or stored)
	StateDelivered = "delivered" // a recipient device confirmed it
	StateRead      = "read"      // the recipient read it
	StateFailed    = "failed"    // given up; 'phonex resend' tries again
	StateReceived  = "received"  // incoming, not yet read here
	StateSeen      = "seen"      // incoming, read here (receipt sent)
)

// Queue limits, as the seed's QueuedMessage: retries with backoff up to a
// send counter.
const (
	MaxSendAttempts = 10
	firstBackoff    = 2 * time.Second
	maxBackoff      = 5 * time.Minute
)

// ErrNotAllowed is a refusal because the recipient has not listed the sender.
var ErrNotAllowed = errors.New("not allowed: the recipient has not added you to their contacts")

// ErrNotListed is a refusal because the sender has not listed the recipient:
// the recipient's device could not read the sender's keys to open it.
var ErrNotListed = errors.New("not allowed: you have not added the recipient to your contacts")

// ErrTooLarge is a message that cannot pass the cluster in one SIP MESSAGE.
var ErrTooLarge = errors.New("message too large")

// errTemporary marks a failure to take an incoming message that may pass
// later (the cluster's key service unreachable, the local database busy):
// the device answers 5xx and the cluster keeps its copy and retries.
var errTemporary = errors.New("temporary failure")

func temporary(err error) error { return fmt.Errorf("%w: %w", errTemporary, err) }

// Event is something that happened, for 'phonex listen'.
type Event struct {
	Type       string    `json:"type"` // ready, message, delivered, read, failed, sent, new_device, key_changed, downgrade, warning, file, file_slots
	From       string    `json:"from,omitempty"`
	FromDevice string    `json:"from_device,omitempty"`
	Peer       string    `json:"peer,omitempty"`
	ID         string    `json:"id,omitempty"`
	Text       string    `json:"text,omitempty"`
	Time       time.Time `json:"time"`
	Outgoing   bool      `json:"outgoing,omitempty"` // a message this account sent from another device
	Insecure   bool      `json:"insecure,omitempty"` // arrived without end-to-end encryption
	Protocol   string    `json:"protocol,omitempty"` // the secure transport protocol it came in
	State      string    `json:"state,omitempty"`    // of a call event: ringing, missed, answered_elsewhere
	Error      string    `json:"error,omitempty"`
	// Presence is a contact's presence (type presence).
	Presence *PresenceInfo `json:"presence,omitempty"`
	// Trust of a message: the sending device's messaging identity, and
	// the conversation's, its least trusted device's (calltrust.go).
	Trust             string `json:"trust,omitempty"`
	ConversationTrust string `json:"conversation_trust,omitempty"`
}

// InboxEntry is one message of the history.
type InboxEntry struct {
	ID        string    `json:"id"`
	Peer      string    `json:"peer"`
	Direction string    `json:"direction"` // in, out
	Device    string    `json:"device"`
	Text      string    `json:"text"`
	Time      time.Time `json:"time"`
	State     string    `json:"state"`
	Insecure  bool      `json:"insecure,omitempty"`
}

func msgID(nonce int32) string { return fmt.Sprintf("%08x", uint32(nonce)) }

func parseID(id string) (int32, error) {
	var n uint32
	if _, err := fmt.Sscanf(id, "%08x", &n); err != nil || len(id) != 8 {
		return 0, fmt.Errorf("message id %q: want 8 hex digits", id)
	}
	return int32(n), nil
}

func randomNonce() int32 {
	var b [4]byte
	rand.Read(b[:])
	return int32(binary.BigEndian.Uint32(b[:]))
}

// queued is one entry of the persistent outgoing queue.
type queued struct {
	ID       int64
	Kind     string // text, receipt
	Peer     string
	Nonce    int32
	Payload  []byte // the AMP message
	Envelope []byte // built once; retries resend the same bytes
	Attempts int
}

// messenger is the messaging engine of an open profile.
type messenger struct {
	p       *Profile
	sipAddr string
	link    *sipLink
	stp     *stp.Dispatcher
	amp     *amp.Dispatcher
	mu      sync.Mutex // one queue run at a time
	emit    func(Event)
	watch   *watcher // presence, while listening
}

func (p *Profile) messenger(ctx context.Context) (*messenger, error) {
	var me api.Me
	err := p.c.call(ctx, "GET", api.PathMe, nil, &me)
	if err != nil {
		return nil, err
	}
	if err := p.publishKeys(ctx); err != nil {
		return nil, err
	}
	if err := p.publishPrekeys(ctx); err != nil {
		p.log.Warn("ratchet prekeys not published; messages fall back to key slots", "err", err)
	}
	m := &messenger{p: p, sipAddr: me.SIP, stp: stp.NewDispatcher(), amp: amp.NewDispatcher(), emit: p.eventSink()}
	if m.link, err = m.dial(); err != nil {
		return nil, err
	}
	return m, nil
}

// dial opens a SIP link presenting the device's current certificate.
func (m *messenger) dial() (*sipLink, error) {
	p := m.p
	cert := tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Keys.Sign, Leaf: p.Cert}
	return dialSIP(m.sipAddr, p.Device, p.CA, cert, p.log)
}

// relink replaces the SIP link after a certificate renewal: the cluster
// accepts only a device's current certificate.
func (m *messenger) relink(ctx context.Context, onMessage func(*sip.Request) (int, string)) error {
	link, err := m.dial()
	if err != nil {
		return err
	}
	link.onMessage = onMessage
	if m.watch != nil {
		link.onNotify = m.watch.onNotify
		m.watch.setLink(link)
	}
	m.link.mu.Lock()
	link.calls = m.link.calls
	m.link.mu.Unlock()
	m.mu.Lock()
	old := m.link
	m.link = link
	m.mu.Unlock()
	old.close()
	return link.register(ctx, 60)
}

func (m *messenger) close() { m.link.close() }

// Send queues a text for user and tries to hand it to the cluster. It
// returns the message id; a nil error means the cluster accepted it.
func (p *Profile) Send(ctx context.Context, to, text string) (string, error) {
	r, err := p.SendWith(ctx, to, text, SendOptions{})
	return r.ID, err
}

func (p *Profile) enqueueText(ctx context.Context, to ident.Account, text string) (int32, error) {
	nonce := randomNonce()
	payload, err := (&amp.Text{Version: 2, Body: text, Nonce: nonce}).Marshal()
	if err != nil {
		return 0, err
	}
	// The envelope is larger than the (compressed) payload it seals, so a
	// payload past the cluster's limit can never be sent: refuse it now
	// rather than queue it.
	if len(payload) > siplimit.MaxBody {
		return 0, fmt.Errorf("%w: %d bytes of text compress to %d, the cluster takes at most %d per message", ErrTooLarge, len(text), len(payload), siplimit.MaxBody)
	}
	now := p.now()
	tx, err := p.db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages(peer, direction, nonce, device, body, sent, received, state, secure) VALUES(?,?,?,?,?,?,?,?,1)`,
		to.String(), "out", nonce, p.Device.Name, text, now.UnixMilli(), now.UnixMilli(), StateQueued); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO queue(kind, peer, nonce, payload, next_try, state) VALUES('text',?,?,?,?, 'queued')`,
		to.String(), nonce, payload, now.UnixMilli()); err != nil {
		return 0, err
	}
	return nonce, tx.Commit()
}

func (p *Profile) enqueueReceipt(ctx context.Context, to string, typ int32, nonces []int32) error {
	payload, err := (&amp.Receipt{Type: typ, Nonces: nonces, Time: p.now()}).Marshal()
	if err != nil {
		return err
	}
	_, err = p.db.db.ExecContext(ctx, `INSERT INTO queue(kind, peer, nonce, payload, next_try, state) VALUES('receipt',?,0,?,?, 'queued')`,
		to, payload, p.now().UnixMilli())
	return err
}

// flush sends every due queue entry in order. If want is non-zero, the
// error of that text's attempt is returned.
func (m *messenger) flush(ctx context.Context, want int32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	rows, err := m.p.db.db.QueryContext(ctx, `SELECT id, kind, peer, nonce, payload, envelope, attempts FROM queue WHERE state='queued' AND next_try<=? ORDER BY id`, m.p.now().UnixMilli())
	if err != nil {
		return err
	}
	var due []queued
	for rows.Next() {
		var q queued
		if err := rows.Scan(&q.ID, &q.Kind, &q.Peer, &q.Nonce, &q.Payload, &q.Envelope, &q.Attempts); err != nil {
			rows.Close()
			return err
		}
		due = append(due, q)
	}
	rows.Close()
	var wantErr error
	for _, q := range due {
		// Another process of this profile (a running listen beside a
		// send) flushes the same queue: only the one that claims an entry
		// sends it, or a message would go out twice.
		claimed, err := m.claim(ctx, q.ID)
		if err != nil {
			return err
		}
		if !claimed {
			if isText(q.Kind) && q.Nonce == want {
				wantErr = m.awaitOther(ctx, q)
			}
			continue
		}
		err = m.attempt(ctx, q)
		if isText(q.Kind) && q.Nonce == want {
			wantErr = err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return wantErr
}

// sendLease is how long a process that claimed a queue entry has to
// settle it (sent, failed, or a retry scheduled) before another process
// of the profile may take it; one that dies while sending leaves it for
// that long.
const sendLease = 2 * time.Minute

// claim takes a due queue entry for this process: one statement, so of
// two processes flushing the same profile's queue only one gets it.
func (m *messenger) claim(ctx context.Context, id int64) (bool, error) {
	now := m.p.now().UnixMilli()
	res, err := m.p.db.db.ExecContext(ctx, `UPDATE queue SET next_try=? WHERE id=? AND state='queued' AND next_try<=?`,
		now+sendLease.Milliseconds(), id, now)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// awaitOther waits for the outcome of an entry another process claimed,
// so that a send reports what became of its message, not that it was
// handed over.
func (m *messenger) awaitOther(ctx context.Context, q queued) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	deadline := time.Now().Add(sendLease)
	for {
		var state, lastErr string
		var attempts int
		err := m.p.db.db.QueryRowContext(ctx, `SELECT state, last_error, attempts FROM queue WHERE id=?`, q.ID).Scan(&state, &lastErr, &attempts)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return errors.New("the message was dropped by another process of this profile")
		case err != nil:
			return err
		case state == "done":
			return nil
		case state == "failed":
			return errors.New(lastErr)
		case attempts > q.Attempts:
			return fmt.Errorf("not sent yet, will retry (attempt %d of %d): %s", attempts, MaxSendAttempts, lastErr)
		}
		if time.Now().After(deadline) {
			return errors.New("not sent yet: another process of this profile is sending it")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// attempt sends one queue entry and records the outcome.
func (m *messenger) attempt(ctx context.Context, q queued) error {
	peer, err := ident.ParseAccount(q.Peer)
	if err != nil {
		return m.finish(ctx, q, StateFailed, err)
	}
	if q.Envelope == nil && q.Kind != kindPlain {
		env, err := m.sealAndStore(ctx, q, peer)
		if errors.Is(err, ErrTooLarge) {
			return m.drop(ctx, q, err)
		}
		if errors.Is(err, ErrNoSecureDevice) {
			// Never sent in plain text instead; Resend tries again once a
			// device is enrolled.
			return m.finish(ctx, q, StateFailed, err)
		}
		if err != nil {
			var ae *api.Error
			if errors.As(err, &ae) && (ae.Code == api.CodeNotAllowed || ae.Code == api.CodeUnknownUser || ae.Code == api.CodeFederation) {
				if ae.Code == api.CodeNotAllowed {
					err = fmt.Errorf("%w (%s)", ErrNotAllowed, peer)
				}
				return m.finish(ctx, q, StateFailed, err)
			}
			return m.retry(ctx, q, err)
		}
		q.Envelope = env
	}
	// A mixed send is two envelopes (ratchet, key slots); a retry sends
	// both again and receivers drop what they already have.
	bodies, ctype := unpackEnvelopes(q.Envelope), ContentType
	if q.Kind == kindPlain {
		bodies, ctype = [][]byte{q.Payload}, PlainType
	}
	var notices []string
	for _, body := range bodies {
		var warns []string
		if warns, err = m.link.message(ctx, peer, ctype, body); err != nil {
			break
		}
		notices = append(notices, warns...)
	}
	var se *SIPError
	switch {
	case err == nil:
		m.notDelivered(q, notices)
		return m.finish(ctx, q, StateSent, nil)
	case errors.As(err, &se) && se.Code == 403 && strings.Contains(strings.ToLower(se.Reason), "you have not added"):
		return m.finish(ctx, q, StateFailed, fmt.Errorf("%w (%s)", ErrNotListed, peer))
	case errors.As(err, &se) && se.Code == 403 && strings.Contains(strings.ToLower(se.Reason), "not allowed"):
		return m.finish(ctx, q, StateFailed, fmt.Errorf("%w (%s)", ErrNotAllowed, peer))
	case errors.As(err, &se) && se.Permanent():
		return m.finish(ctx, q, StateFailed, err)
	default:
		return m.retry(ctx, q, err)
	}
}

// sealAndStore builds a queue entry's envelope once and stores it, with the
// ratchet sessions it advanced, in one transaction: retries resend the same
// bytes, and a session never moves ahead of what was stored.
func (m *messenger) sealAndStore(ctx context.Context, q queued, peer ident.Account) ([]byte, error) {
	// Sealing reads the database, so the write transaction (the database
	// has one connection) starts only afterwards.
	env, save, err := m.seal(ctx, q, peer)
	if err != nil {
		return nil, err
	}
	for _, one := range unpackEnvelopes(env) { // each goes in its own MESSAGE
		if len(one) > siplimit.MaxBody {
			// Nothing is saved: the sessions do not move for a message never sent.
			return nil, fmt.Errorf("%w: sealed for every device it goes to, it takes %d bytes, the cluster takes at most %d per message; send a shorter text",
				ErrTooLarge, len(one), siplimit.MaxBody)
		}
	}
	tx, err := m.p.db.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if save != nil {
		if err := save(tx); err != nil {
			return nil, err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE queue SET envelope=? WHERE id=?`, env, q.ID); err != nil {
		return nil, err
	}
	return env, tx.Commit()
}

// seal encrypts (texts) or signs (receipts) a queue entry for every device
// of the peer and this account's other devices: with the ratchet STP for
// every device that takes part in it, and STPSimpleGroup key slots only for
// the others (then the envelope is two, packed). A ratchet-capable device
// that gets key slots (the cluster offered no valid bundle for it) is
// reported as a downgrade. The returned save, when not nil, stores the
// ratchet sessions that sealing advanced; it runs in the transaction that
// stores the envelope.
func (m *messenger) seal(ctx context.Context, q queued, peer ident.Account) ([]byte, func(*sql.Tx) error, error) {
	from := &stp.Sender{Address: m.p.Device.String(), Signer: m.p.Keys.Sign}
	switch q.Kind {
	case "receipt":
		env, err := stp.SealAuth(from, peer.String(), &stp.Outgoing{AmpType: amp.ReceiptV1.Type, AmpVersion: amp.ReceiptV1.Version, Payload: q.Payload})
		return env, nil, err
	case "text":
	default:
		return nil, nil, fmt.Errorf("unknown queue entry kind %q", q.Kind)
	}
	theirs, ours, err := m.targets(ctx, peer)
	if err != nil {
		return nil, nil, err
	}
	all := append(append([]peerDevice{}, theirs...), ours...)
	m.announce(all)
	viaRatchet, viaSlots, reachable, err := m.split(ctx, all, peer)
	if err != nil {
		return nil, nil, err
	}
	if !reachable {
		return nil, nil, fmt.Errorf("%s: %w", peer, ErrNoSecureDevice)
	}
	var envs [][]byte
	var save func(*sql.Tx) error
	if len(viaRatchet) > 0 {
		env, sv, err := m.sealRatchet(ctx, q, peer, viaRatchet)
		if err != nil {
			return nil, nil, err
		}
		envs, save = append(envs, env), sv
	}
	if len(viaSlots) > 0 {
		for _, d := range viaSlots {
			if d.downgrade {
				m.emit(Event{Type: EventDowngrade, Peer: d.id.Account.String(), FromDevice: d.id.Name, ID: msgID(q.Nonce), Time: m.p.now(),
					Protocol: protocolName(stp.GroupV2), Error: "sent to " + d.id.String() + " with key slots (no forward secrecy): it takes part in the ratchet, but the cluster offered no valid prekey bundle for it"})
			}
		}
		env, err := stp.SealGroup(from, peer.String(), recipients(devicesOf(viaSlots), m.p.Device), &stp.Outgoing{AmpType: amp.TextV2.Type, AmpVersion: amp.TextV2.Version, Payload: q.Payload})
		if err != nil {
			return nil, nil, err
		}
		envs = append(envs, env)
	}
	return packEnvelopes(envs), save, nil
}

// targets are the verified devices of the peer and of this account. Devices
// that need a new ratchet session are fetched again with their one-time
// prekeys, which the cluster hands out once.
func (m *messenger) targets(ctx context.Context, peer ident.Account) (theirs, ours []peerDevice, err error) {
	fetch := func(a ident.Account) ([]peerDevice, error) {
		ds, err := m.p.bundles(ctx, a)
		if err != nil {
			return nil, err
		}
		var fresh []string
		for _, d := range ds {
			if d.id == m.p.Device || d.bundle == nil {
				continue
			}
			if s, err := (sessionStore{m.p.db.db}).load(ctx, d.id.String()); err == nil && s == nil {
				fresh = append(fresh, d.id.Name)
			}
		}
		if len(fresh) == 0 {
			return ds, nil
		}
		again, err := m.p.bundles(ctx, a, fresh...)
		if err != nil {
			return nil, err
		}
		// The first look pinned the devices; keep what it found.
		for i := range again {
			for _, d := range ds {
				if d.id == again[i].id && again[i].pin == pinSame {
					again[i].pin = d.pin
				}
			}
		}
		return again, nil
	}
	if theirs, err = fetch(peer); err != nil {
		return nil, nil, err
	}
	if peer != m.p.Device.Account {
		if ours, err = fetch(m.p.Device.Account); err != nil {
			return nil, nil, err
		}
	}
	return theirs, ours, nil
}

func (m *messenger) finish(ctx context.Context, q queued, state string, cause error) error {
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	qstate := "done"
	if state == StateFailed {
		qstate = "failed"
	}
	if _, err := m.p.db.db.ExecContext(ctx, `UPDATE queue SET state=?, attempts=attempts+1, last_error=? WHERE id=?`, qstate, msg, q.ID); err != nil {
		return err
	}
	if isText(q.Kind) {
		if _, err := m.p.db.db.ExecContext(ctx, `UPDATE messages SET state=? WHERE peer=? AND direction='out' AND nonce=? AND state IN (?, ?)`,
			state, q.Peer, q.Nonce, StateQueued, StateFailed); err != nil {
			return err
		}
		ev := Event{Type: state, Peer: q.Peer, ID: msgID(q.Nonce), Time: m.p.now(), Error: msg, Insecure: q.Kind == kindPlain}
		m.emit(ev)
	}
	return cause
}

// drop removes a queue entry that can never be sent, and its message, so
// nothing waits for or retries it.
func (m *messenger) drop(ctx context.Context, q queued, cause error) error {
	tx, err := m.p.db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM queue WHERE id=?`, q.ID); err != nil {
		return err
	}
	if isText(q.Kind) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE peer=? AND direction='out' AND nonce=?`, q.Peer, q.Nonce); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if isText(q.Kind) {
		m.emit(Event{Type: StateFailed, Peer: q.Peer, ID: msgID(q.Nonce), Time: m.p.now(), Error: cause.Error()})
	}
	return cause
}

func (m *messenger) retry(ctx context.Context, q queued, cause error) error {
	q.Attempts++
	if q.Attempts >= MaxSendAttempts {
		return m.finish(ctx, q, StateFailed, fmt.Errorf("gave up after %d attempts: %w", q.Attempts, cause))
	}
	backoff := min(firstBackoff<<(q.Attempts-1), maxBackoff)
	next := m.p.now().Add(backoff)
	if _, err := m.p.db.db.ExecContext(ctx, `UPDATE queue SET attempts=?, next_try=?, last_error=? WHERE id=?`, q.Attempts, next.UnixMilli(), cause.Error(), q.ID); err != nil {
		return err
	}
	return fmt.Errorf("not sent yet, will retry (attempt %d of %d): %w", q.Attempts, MaxSendAttempts, cause)
}

// Resend puts a failed or queued message back in the queue with a fresh
// envelope (new keys for every current device of the peer).
func (p *Profile) Resend(ctx context.Context, id string) error {
	nonce, err := parseID(id)
	if err != nil {
		return err
	}
	res, err := p.db.db.ExecContext(ctx, `UPDATE queue SET state='queued', envelope=NULL, attempts=0, next_try=?, last_error='' WHERE kind IN ('text','plain') AND nonce=? AND state IN ('queued','failed')`,
		p.now().UnixMilli(), nonce)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("no queued or failed message %s", id)
	}
	p.db.db.ExecContext(ctx, `UPDATE messages SET state=? WHERE direction='out' AND nonce=?`, StateQueued, nonce)
	m, err := p.messenger(ctx)
	if err != nil {
		return err
	}
	defer m.close()
	return m.flush(ctx, nonce)
}

// Listen keeps the device registered, delivers incoming messages and
// receipts to emit, and retries the outgoing queue, until ctx ends.
// A second Listen on the same profile, in this process or another, fails
// with ErrListening.
func (p *Profile) Listen(ctx context.Context, emit func(Event)) error {
	release, err := p.lockListen()
	if err != nil {
		return err
	}
	defer release()
	m, err := p.messenger(ctx)
	if err != nil {
		return err
	}
	defer m.close()
	m.emit = emit
	// New devices and changed keys seen while not listening (by 'send')
	// stay outstanding until trusted; each listen shows them first.
	if ns, err := p.Notices(ctx); err == nil {
		for _, e := range ns {
			emit(e)
		}
	}
	onMessage := func(req *sip.Request) (int, string) { return m.receive(ctx, req) }
	m.watch = newWatcher(p, m.link, emit)
	m.link.mu.Lock()
	m.link.onMessage = onMessage
	m.link.onNotify = m.watch.onNotify
	// Calls ring here but are not answered: listen reports them.
	m.link.calls = &ringer{ctx: ctx, emit: emit, now: p.now}
	m.link.mu.Unlock()
	// Registration is refreshed often: it doubles as the keep-alive that
	// finds a lost connection (a restarted cluster, a network change) and
	// rebinds over a new one within seconds.
	const expires, every = 60, 15 * time.Second
	// Published before registering, so a device chosen invisible never
	// shows online for a moment.
	if _, err := m.watch.publish(ctx); err != nil {
		p.log.Warn("presence not published", "err", err)
	}
	if err := m.link.register(ctx, expires); err != nil {
		return err
	}
	if err := m.watch.subscribeAll(ctx, true); err != nil {
		p.log.Warn("presence subscriptions failed", "err", err)
	}
	// Half-key slots for files: topped up now and on every refresh.
	p.refillFileSlotsEvent(ctx, emit)
	emit(Event{Type: "ready", Time: p.now()})
	refresh := time.NewTicker(every)
	defer refresh.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	m.flush(ctx, 0)
	registered := true
	for {
		select {
		case <-ctx.Done():
			uctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			m.link.register(uctx, 0)
			cancel()
			return nil
		case <-refresh.C:
			if err := p.publishPrekeys(ctx); err != nil {
				p.log.Debug("prekey refill failed", "err", err)
			}
			p.refillFileSlotsEvent(ctx, emit)
			// The publication's refresh finds a cluster that restarted
			// (412): publish and subscribe again at once.
			lost, perr := m.watch.publish(ctx)
			err := m.link.register(ctx, expires)
			if errors.Is(err, ErrUnreachable) && m.moveNode(ctx, onMessage) {
				err, lost = nil, true
			}
			if err == nil {
				if serr := m.watch.subscribeAll(ctx, lost || perr != nil || !registered); serr != nil {
					p.log.Debug("presence subscriptions failed", "err", serr)
				}
			}
			switch {
			case err != nil && registered:
				registered = false
				emit(Event{Type: "warning", Time: p.now(), Error: "lost the cluster, retrying: " + err.Error()})
			case err == nil && !registered:
				registered = true
				emit(Event{Type: "warning", Time: p.now(), Error: "connected to the cluster again"})
			}
			if !registered {
				refresh.Reset(2 * time.Second)
			} else {
				refresh.Reset(every)
			}
		case <-tick.C:
			if registered && m.link.lost() {
				refresh.Reset(time.Millisecond) // refresh now: register again or move
			}
			serial := p.Cert.SerialNumber
			if err := p.RenewIfDue(ctx); err != nil {
				p.log.Warn("certificate renewal failed", "err", err)
			}
			if p.Cert.SerialNumber.Cmp(serial) != 0 {
				if err := m.relink(ctx, onMessage); err != nil {
					emit(Event{Type: "warning", Time: p.now(), Error: "reconnecting with the renewed certificate: " + err.Error()})
				} else if err := m.watch.subscribeAll(ctx, true); err != nil {
					p.log.Debug("presence subscriptions failed", "err", err)
				}
			}
			m.flush(ctx, 0)
			m.watch.tick(ctx)
		}
	}
}

// receive handles one MESSAGE from the cluster. It answers 200 only once the
// message is stored in the local database (or known as a duplicate), so the
// cluster keeps its copy until then.
func (m *messenger) receive(ctx context.Context, req *sip.Request) (int, string) {
	from := req.From()
	if from == nil {
		return 400, "Missing From"
	}
	sender, err := ident.ParseAccount(from.Address.User + "@" + from.Address.Host)
	if err != nil {
		return 400, "Bad From"
	}
	ctype := ""
	if h := req.ContentType(); h != nil {
		ctype = strings.ToLower(strings.TrimSpace(h.Value()))
	}
	now := m.p.now()
	if !strings.HasPrefix(ctype, ContentType) {
		if strings.HasPrefix(ctype, "text/plain") {
			return m.receiveInsecure(ctx, sender, req, now)
		}
		return 415, "Unsupported Media Type"
	}
	guard := &pendingGuard{db: m.p.db.db, limits: &m.p.db.seen, now: m.p.now}
	// Signed-only messages (receipts) are addressed to the account; key
	// slots name the device.
	// The STP wraps a certificate lookup's error as an unknown sender; kept
	// here, it tells a lookup that may pass later from one that never will.
	var certErr error
	var spd *peerDevice // the sending device, once looked up
	r := &stp.Receiver{Addresses: []string{m.p.Device.String(), m.p.Device.Account.String()}, KEMKey: nil, Replay: guard, Now: m.p.now,
		SenderCertificate: func(s, _ string) (*x509.Certificate, error) {
			d, err := ident.ParseDevice(s)
			if err != nil {
				return nil, err
			}
			pd, err := m.senderDevice(ctx, d)
			if err != nil {
				certErr = err
				return nil, err
			}
			spd = &pd
			return pd.cert, nil
		}}
	k, _, err := m.p.kemKey(ctx)
	if err != nil {
		m.p.log.Error("read the message key", "err", err)
		return 500, "Local storage failed"
	}
	r.KEMKey = k
	r.RSAKey = rsaKey(m.p.Keys.Sign)
	var msg *stp.Message
	if p, payload, perr := stp.ParseEnvelope(req.Body()); perr == nil && p == stp.RatchetV1 {
		msg, guard.extra, err = m.openRatchet(ctx, payload)
		if err == nil {
			if seen, gerr := guard.Seen(msg.Sender, msg.Nonce, msg.Sent); gerr != nil {
				err = gerr
			} else if seen {
				err = stp.ErrReplay
			}
		}
		if errors.Is(err, ratchet.ErrDuplicate) {
			err = stp.ErrReplay
		}
	} else {
		msg, err = m.stp.Open(req.Body(), r)
	}
	if errors.Is(err, stp.ErrReplay) {
		m.p.log.Debug("duplicate or replayed message dropped")
		return 200, "OK"
	}
	if errors.Is(err, stp.ErrNotForMe) {
		// The cluster copies what this account sends to its other devices
		// (a receipt this account sent to a contact is not for them), and a
		// mixed send carries an envelope for the other devices.
		m.p.log.Debug("message for other devices skipped")
		return 200, "OK"
	}
	if err != nil && (errors.Is(err, errTemporary) || errors.Is(certErr, errTemporary) || guard.err != nil) {
		// 4xx would make the cluster drop its copy for good.
		m.p.log.Warn("message deferred", "err", err)
		return 500, "Temporary failure, try again later"
	}
	if err != nil {
		m.p.log.Warn("message refused", "err", err)
		m.emit(Event{Type: "warning", From: sender.String(), Time: now, Error: "a message could not be opened: " + err.Error()})
		return 400, "Cannot open message"
	}
	sdev, err := ident.ParseDevice(msg.Sender)
	if err != nil || sdev.Account != sender {
		return 403, "Sender mismatch"
	}
	kind := amp.Kind{Type: msg.AmpType, Version: msg.AmpVersion}
	am, err := m.amp.Decode(kind, msg.Payload)
	if err != nil {
		m.p.log.Warn("application message refused", "err", err)
		return 400, "Cannot decode message"
	}
	if kind.Confidential() && msg.Protocol.Type == stp.TypeAuth {
		return 400, "Confidential message sent without encryption"
	}
	if kind.Confidential() && msg.Protocol.Type != stp.TypeRatchet {
		if code, reason, refused := m.refuseDowngrade(ctx, sdev, msg, spd, now); refused {
			return code, reason
		}
	}
	switch a := am.(type) {
	case *amp.Text:
		return m.storeText(ctx, sdev, msg, a, guard, now)
	case *amp.Receipt:
		return m.storeReceipt(ctx, sdev, msg, a, guard, now)
	default:
		if err := guard.commit(ctx, nil); err != nil {
			return 500, "Local storage failed"
		}
		return 200, "OK"
	}
}

func (m *messenger) storeText(ctx context.Context, sdev ident.Device, msg *stp.Message, t *amp.Text, g *pendingGuard, now time.Time) (int, string) {
	own := sdev.Account == m.p.Device.Account
	peer, dir, state := sdev.Account.String(), "in", StateReceived
	if own {
		// A copy of what this account sent from another device.
		dest, err := ident.ParseAccount(msg.Destination)
		if err != nil {
			return 400, "Bad destination"
		}
		peer, dir, state = dest.String(), "out", StateSent
	}
	nonce := t.Nonce
	if t.Version == 1 {
		nonce = int32(msg.Nonce)
	}
	err := g.commit(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO messages(peer, direction, nonce, device, body, sent, received, state, secure) VALUES(?,?,?,?,?,?,?,?,1) ON CONFLICT DO NOTHING`,
			peer, dir, nonce, sdev.Name, t.Body, msg.Sent.UnixMilli(), now.UnixMilli(), state)
		if err != nil || own {
			return err
		}
		// The delivery receipt goes in the same transaction: stored message,
		// queued receipt, or neither.
		payload, err := (&amp.Receipt{Type: amp.ReceiptDelivered, Nonces: []int32{nonce}, Time: now}).Marshal()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO queue(kind, peer, nonce, payload, next_try, state) VALUES('receipt',?,0,?,?, 'queued')`, peer, payload, now.UnixMilli())
		return err
	})
	if err != nil {
		m.p.log.Error("store message", "err", err)
		return 500, "Local storage failed"
	}
	ev := Event{Type: "message", From: sdev.Account.String(), FromDevice: sdev.Name, Peer: peer, ID: msgID(nonce), Text: t.Body, Time: msg.Sent, Outgoing: own,
		Protocol: protocolName(msg.Protocol)}
	m.p.messageTrust(ctx, &ev, sdev)
	m.emit(ev)
	return 200, "OK"
}

func (m *messenger) storeReceipt(ctx context.Context, sdev ident.Device, msg *stp.Message, r *amp.Receipt, g *pendingGuard, now time.Time) (int, string) {
	if sdev.Account == m.p.Device.Account {
		// This account's other device confirmed or read a message.
		return m.commitOnly(ctx, g)
	}
	state := StateDelivered
	typ := "delivered"
	if r.Type == amp.ReceiptRead {
		state, typ = StateRead, "read"
	}
	var changed []int32
	err := g.commit(ctx, func(tx *sql.Tx) error {
		for _, n := range r.Nonces {
			// States only move forward: read is not undone by a late delivered.
			res, err := tx.ExecContext(ctx, `UPDATE messages SET state=? WHERE peer=? AND direction='out' AND nonce=? AND state IN ('queued','sent','failed'`+map[bool]string{true: `,'delivered'`, false: ``}[state == StateRead]+`)`,
				state, sdev.Account.String(), n)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k > 0 {
				changed = append(changed, n)
			}
		}
		return nil
	})
	if err != nil {
		return 500, "Local storage failed"
	}
	for _, n := range changed {
		m.emit(Event{Type: typ, From: sdev.Account.String(), FromDevice: sdev.Name, Peer: sdev.Account.String(), ID: msgID(n), Time: r.Time})
	}
	return 200, "OK"
}

func (m *messenger) commitOnly(ctx context.Context, g *pendingGuard) (int, string) {
	if err := g.commit(ctx, nil); err != nil {
		return 500, "Local storage failed"
	}
	return 200, "OK"
}

// receiveInsecure keeps a plain-text MESSAGE from a standard SIP phone, or
// sent with --insecure (the cluster has checked the sender is a contact),
// clearly marked insecure. One from this account (its phone, or another
// device's --insecure send) is an outgoing copy to the To account.
func (m *messenger) receiveInsecure(ctx context.Context, sender ident.Account, req *sip.Request, now time.Time) (int, string) {
	body := string(req.Body())
	if len(body) > amp.MaxTextSize {
		return 513, "Message Too Large"
	}
	peer, dir, state, own := sender.String(), "in", StateReceived, sender == m.p.Device.Account
	if own {
		to := req.To()
		if to == nil {
			return 400, "Missing To"
		}
		dest, err := ident.ParseAccount(to.Address.User + "@" + to.Address.Host)
		if err != nil {
			return 400, "Bad To"
		}
		peer, dir, state = dest.String(), "out", StateSent
	}
	device := assertedDevice(req)
	nonce := randomNonce()
	if _, err := m.p.db.db.ExecContext(ctx, `INSERT INTO messages(peer, direction, nonce, device, body, sent, received, state, secure) VALUES(?,?,?,?,?,?,?,?,0)`,
		peer, dir, nonce, device, body, now.UnixMilli(), now.UnixMilli(), state); err != nil {
		return 500, "Local storage failed"
	}
	m.emit(Event{Type: "message", From: sender.String(), FromDevice: device, Peer: peer, ID: msgID(nonce), Text: body, Time: now, Outgoing: own, Insecure: true})
	return 200, "OK"
}

// senderDevice finds and verifies a sending device: from the account's
// current devices, checked against the CA and the pins.
func (m *messenger) senderDevice(ctx context.Context, d ident.Device) (peerDevice, error) {
	ds, err := m.p.bundles(ctx, d.Account)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) && (ae.Code == api.CodeNotAllowed || ae.Code == api.CodeUnknownUser) {
			// The sender removed this account from their contacts, or is
			// gone: their keys will not be shown.
			return peerDevice{}, fmt.Errorf("keys of %s: %v: %w", d, err, stp.ErrUnknownSender)
		}
		return peerDevice{}, temporary(fmt.Errorf("keys of %s: %w", d, err))
	}
	for _, pd := range ds {
		if pd.id == d {
			m.announce([]peerDevice{pd})
			return pd, nil
		}
	}
	return peerDevice{}, fmt.Errorf("no current certificate for %s: %w", d, stp.ErrUnknownSender)
}

// pendingGuard is the persistent replay guard: Seen only looks, and the pair
// is recorded in the same transaction as the message it belongs to.
type pendingGuard struct {
	db     *sql.DB
	limits *seenLimits // pruning of the table (replay.go)
	now    func() time.Time
	extra  func(*sql.Tx) error // the ratchet session and spent prekeys of the message
	sender string
	nonce  uint32
	sent   time.Time
	set    bool
	err    error // the database could not be read: the message may pass later
}

func (g *pendingGuard) Seen(sender string, nonce uint32, sent time.Time) (bool, error) {
	if g.limits != nil {
		if below, err := g.limits.belowFloor(context.Background(), g.db, sent); err != nil || below {
			return below, err
		}
	}
	var one int
	err := g.db.QueryRow(`SELECT 1 FROM seen WHERE sender=? AND nonce=?`, sender, int64(nonce)).Scan(&one)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		g.err = err
		return false, temporary(err)
	}
	g.sender, g.nonce, g.sent, g.set = sender, nonce, sent, true
	return false, nil
}

func (g *pendingGuard) commit(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if g.extra != nil {
		if err := g.extra(tx); err != nil {
			return err
		}
	}
	if g.set {
		if _, err := tx.ExecContext(ctx, `INSERT INTO seen(sender, nonce, sent) VALUES(?,?,?) ON CONFLICT DO NOTHING`, g.sender, int64(g.nonce), g.sent.UnixMilli()); err != nil {
			return err
		}
	}
	if f != nil {
		if err := f(tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if g.limits != nil && g.set {
		// The message is stored; a failed pruning is retried at the next
		// one, so its error is not the message's.
		g.limits.prune(ctx, g.db, g.now(), false)
	}
	return nil
}

// Inbox returns the history, oldest first, optionally with one peer.
func (p *Profile) Inbox(ctx context.Context, with string) ([]InboxEntry, error) {
	q := `SELECT peer, direction, nonce, device, body, sent, state, secure FROM messages`
	var args []any
	if with != "" {
		a, err := ident.ParseAccount(with)
		if err != nil {
			return nil, err
		}
		q += ` WHERE peer=?`
		args = append(args, a.String())
	}
	rows, err := p.db.db.QueryContext(ctx, q+` ORDER BY sent, rowid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []InboxEntry{}
	for rows.Next() {
		var e InboxEntry
		var nonce int32
		var sent int64
		var secure int
		if err := rows.Scan(&e.Peer, &e.Direction, &nonce, &e.Device, &e.Text, &sent, &e.State, &secure); err != nil {
			return nil, err
		}
		e.ID, e.Time, e.Insecure = msgID(nonce), time.UnixMilli(sent).UTC(), secure == 0
		out = append(out, e)
	}
	return out, rows.Err()
}

// MarkRead marks the unread messages from user read and sends read receipts.
func (p *Profile) MarkRead(ctx context.Context, user string) (int, error) {
	a, err := ident.ParseAccount(user)
	if err != nil {
		return 0, err
	}
	rows, err := p.db.db.QueryContext(ctx, `SELECT nonce, secure FROM messages WHERE peer=? AND direction='in' AND state=?`, a.String(), StateReceived)
	if err != nil {
		return 0, err
	}
	var nonces []int32
	for rows.Next() {
		var n int32
		var secure int
		if err := rows.Scan(&n, &secure); err != nil {
			rows.Close()
			return 0, err
		}
		if secure == 1 {
			nonces = append(nonces, n)
		}
	}
	rows.Close()
	if _, err := p.db.db.ExecContext(ctx, `UPDATE messages SET state=? WHERE peer=? AND direction='in' AND state=?`, StateSeen, a.String(), StateReceived); err != nil {
		return 0, err
	}
	if len(nonces) == 0 {
		return 0, nil
	}
	if err := p.enqueueReceipt(ctx, a.String(), amp.ReceiptRead, nonces); err != nil {
		return 0, err
	}
	m, err := p.messenger(ctx)
	if err != nil {
		return len(nonces), fmt.Errorf("read receipts queued, not sent: %w", err)
	}
	defer m.close()
	return len(nonces), m.flush(ctx, 0)
}

// protocolName names an STP for users.
func protocolName(p stp.Protocol) string {
	switch p {
	case stp.RatchetV1:
		return "ratchet"
	case stp.GroupV1:
		return "stp-group"
	case stp.GroupV2:
		return "stp-group-v2"
	case stp.SimpleV3:
		return "stp-simple-v3"
	case stp.SimpleV2:
		return "stp-simple-v2"
	case stp.SimpleV1:
		return "stp-simple-v1"
	}
	return p.String()
}
