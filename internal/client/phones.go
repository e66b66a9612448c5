package client

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/amp"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/siplimit"
)

// Standard SIP phones registered to the cluster cannot open encrypted
// messages. An encrypted message reaches an account's PhoneX devices and
// the sender is told which phones it did not reach (EventNotDelivered);
// only a message the user chose to send in plain text (SendOptions.Insecure)
// reaches phones, marked insecure on every side. Nothing is downgraded
// without the user asking.

// ErrNoSecureDevice: the recipient has no device that can receive an
// encrypted message (only standard phones, or none enrolled yet).
var ErrNoSecureDevice = errors.New("no device that can receive encrypted messages (a standard phone cannot: phonex send --insecure reaches it in plain text)")

// PlainType is the content type of a plain-text message.
const PlainType = "text/plain;charset=UTF-8"

// EventNotDelivered: the cluster took a message but could not give it to
// a device of the recipient (a standard phone cannot open an encrypted
// message); Error says which.
const EventNotDelivered = "not_delivered"

// kindPlain is a queue entry sent as plain text, unsealed.
const kindPlain = "plain"

func isText(kind string) bool { return kind == "text" || kind == kindPlain }

// SendOptions are the choices of SendWith.
type SendOptions struct {
	// Insecure sends the text without end-to-end encryption, so that the
	// recipient's standard phones get it too; the cluster can read it.
	Insecure bool
}

// SendResult is what SendWith reports.
type SendResult struct {
	ID       string
	Insecure bool
	// NotDelivered names the recipient's devices the message cannot
	// reach, with why ("not delivered to alice@example.org/phone: cannot
	// receive encrypted messages").
	NotDelivered []string
}

// SendWith is Send with options; it also reports the recipient's devices
// the message could not go to.
func (p *Profile) SendWith(ctx context.Context, to, text string, o SendOptions) (SendResult, error) {
	r := SendResult{Insecure: o.Insecure}
	acct, err := ident.ParseAccount(to)
	if err != nil {
		return r, err
	}
	if strings.TrimSpace(text) == "" {
		return r, errors.New("empty message")
	}
	if len(text) > amp.MaxTextSize {
		return r, fmt.Errorf("%w: %d bytes of text, at most %d", ErrTooLarge, len(text), amp.MaxTextSize)
	}
	var nonce int32
	if o.Insecure {
		nonce, err = p.enqueuePlain(ctx, acct, text)
	} else {
		nonce, err = p.enqueueText(ctx, acct, text)
	}
	if err != nil {
		return r, err
	}
	r.ID = msgID(nonce)
	m, err := p.messenger(ctx)
	if err != nil {
		return r, fmt.Errorf("message %s queued, not sent: %w", r.ID, err)
	}
	defer m.close()
	emit := m.emit
	m.emit = func(e Event) {
		if e.Type == EventNotDelivered && e.ID == r.ID {
			r.NotDelivered = append(r.NotDelivered, e.Error)
		}
		emit(e)
	}
	if err := m.flush(ctx, nonce); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return SendResult{}, err // removed: there is no message id to follow
		}
		return r, err
	}
	return r, nil
}

func (p *Profile) enqueuePlain(ctx context.Context, to ident.Account, text string) (int32, error) {
	if len(text) > siplimit.MaxBody {
		return 0, fmt.Errorf("%w: %d bytes, the cluster takes at most %d per message", ErrTooLarge, len(text), siplimit.MaxBody)
	}
	nonce := randomNonce()
	now := p.now()
	tx, err := p.db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO messages(peer, direction, nonce, device, body, sent, received, state, secure) VALUES(?,?,?,?,?,?,?,?,0)`,
		to.String(), "out", nonce, p.Device.Name, text, now.UnixMilli(), now.UnixMilli(), StateQueued); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO queue(kind, peer, nonce, payload, next_try, state) VALUES(?,?,?,?,?, 'queued')`,
		kindPlain, to.String(), nonce, []byte(text), now.UnixMilli()); err != nil {
		return 0, err
	}
	return nonce, tx.Commit()
}

// notDelivered reports each device a sent message did not reach, once
// (a mixed send's two MESSAGEs carry the same notices).
func (m *messenger) notDelivered(q queued, notices []string) {
	if !isText(q.Kind) {
		return
	}
	slices.Sort(notices)
	for _, n := range slices.Compact(notices) {
		m.emit(Event{Type: EventNotDelivered, Peer: q.Peer, ID: msgID(q.Nonce), Time: m.p.now(), Error: n})
	}
}

// warnText reads a Warning header value (RFC 3261 §20.43:
// warn-code SP warn-agent SP quoted warn-text).
var warnText = regexp.MustCompile(`^\s*399\s+\S+\s+"((?:[^"\\]|\\.)*)"\s*$`)

// warnings are the texts of a response's 399 Warning headers.
func warnings(res *sip.Response) []string {
	var out []string
	for _, h := range res.GetHeaders("Warning") {
		// A header may list several warnings, comma-separated; the
		// cluster sends one per header.
		if m := warnText.FindStringSubmatch(h.Value()); m != nil {
			out = append(out, strings.ReplaceAll(m[1], `\"`, `"`))
		}
	}
	return out
}

// grParam is a device name in the cluster's P-Asserted-Identity
// (<sip:user@domain;gr=device>).
var grParam = regexp.MustCompile(`;gr=([^;>\s]+)`)

// assertedDevice is the sending device the cluster names in a delivered
// MESSAGE, or "sip" when it names none.
func assertedDevice(req *sip.Request) string {
	h := req.GetHeader("P-Asserted-Identity")
	if h == nil {
		return "sip"
	}
	m := grParam.FindStringSubmatch(h.Value())
	if m == nil || ident.CheckDeviceName(m[1]) != nil {
		return "sip"
	}
	return m[1]
}
