package sdk

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/client"
)

// MessageState is where a message stands.
type MessageState string

// Message states.
const (
	StateQueued    MessageState = client.StateQueued    // outgoing, not yet accepted by the cluster
	StateSent      MessageState = client.StateSent      // accepted by the cluster (delivered or stored)
	StateDelivered MessageState = client.StateDelivered // a recipient device confirmed it
	StateRead      MessageState = client.StateRead      // the recipient read it
	StateFailed    MessageState = client.StateFailed    // given up; Resend tries again
	StateReceived  MessageState = client.StateReceived  // incoming, not yet read here
	StateSeen      MessageState = client.StateSeen      // incoming, read here (receipt sent)
)

// Message is one message of the history kept in the encrypted database.
type Message struct {
	ID        string       `json:"id"`
	Peer      string       `json:"peer"`      // the other account, user@domain
	Direction string       `json:"direction"` // "in" or "out"
	Device    string       `json:"device"`    // the sending device
	Text      string       `json:"text"`
	Time      time.Time    `json:"time"`
	State     MessageState `json:"state"`
	// Insecure: it went without end-to-end encryption (from or to a
	// standard SIP phone, or sent with SendOptions.Insecure), so the
	// cluster could read it.
	Insecure bool `json:"insecure,omitempty"`
}

// Send encrypts text for every current device of user (and this account's
// other devices), queues it and hands it to the cluster. It returns the
// message id; a nil error means the cluster accepted it (delivered, or
// stored for offline devices). On error the id, when not empty, names the
// message left in the queue, which Listen retries and Resend restarts.
func (d *Device) Send(ctx context.Context, user, text string) (string, error) {
	return d.p.Send(ctx, user, text)
}

// SendOptions are the choices of SendWith.
type SendOptions struct {
	// Insecure sends the text in plain, without end-to-end encryption:
	// the cluster can read it, and the recipient's standard SIP phones get
	// it too. Every side marks it insecure. Never chosen for the user.
	Insecure bool
}

// SendResult is what SendWith reports.
type SendResult struct {
	ID       string `json:"id"`
	Insecure bool   `json:"insecure,omitempty"`
	// NotDelivered names the recipient's devices the message cannot
	// reach, with why: an encrypted message does not go to standard
	// phones ("not delivered to bob@example.org/phone: cannot receive
	// encrypted messages").
	NotDelivered []string `json:"not_delivered,omitempty"`
}

// SendWith is Send with options, reporting also the recipient's devices
// the message could not go to (each also an EventNotDelivered).
func (d *Device) SendWith(ctx context.Context, user, text string, o SendOptions) (SendResult, error) {
	r, err := d.p.SendWith(ctx, user, text, client.SendOptions{Insecure: o.Insecure})
	return SendResult{ID: r.ID, Insecure: r.Insecure, NotDelivered: r.NotDelivered}, err
}

// Resend puts a failed or queued message back in the queue with a fresh
// envelope, encrypted anew for every current device of the peer.
func (d *Device) Resend(ctx context.Context, id string) error {
	if err := d.p.Resend(ctx, id); err != nil {
		return fmt.Errorf("resend %s: %w", id, err)
	}
	return nil
}

// Inbox returns the history, oldest first; with, when not empty, keeps only
// the conversation with that account.
func (d *Device) Inbox(ctx context.Context, with string) ([]Message, error) {
	es, err := d.p.Inbox(ctx, with)
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	out := make([]Message, len(es))
	for i, e := range es {
		out[i] = Message{ID: e.ID, Peer: e.Peer, Direction: e.Direction, Device: e.Device, Text: e.Text, Time: e.Time,
			State: MessageState(e.State), Insecure: e.Insecure}
	}
	return out, nil
}

// MarkRead marks the unread messages from user read and sends read receipts
// to the sender. It returns how many it marked.
func (d *Device) MarkRead(ctx context.Context, user string) (int, error) {
	n, err := d.p.MarkRead(ctx, user)
	if err != nil {
		return n, fmt.Errorf("mark read %s: %w", user, err)
	}
	return n, nil
}

// EventType names what Listen reports.
type EventType string

// Event types of Listen.
const (
	// EventReady: the device is registered with the cluster; messages
	// stored for it start arriving. Sent once, after the outstanding
	// notices (EventNewDevice, EventKeyChanged).
	EventReady EventType = "ready"
	// EventMessage: a message arrived, decrypted and verified (or, with
	// Insecure, in plain text from a standard SIP phone).
	EventMessage   EventType = "message"
	EventDelivered EventType = "delivered" // a recipient device confirmed ID
	EventRead      EventType = "read"      // the recipient read ID
	EventSent      EventType = "sent"      // the cluster accepted a queued message
	EventFailed    EventType = "failed"    // a queued message was given up
	// EventNewDevice: a device was added to a contact's account (or to
	// this one) after the first ones; check it with the contact, then
	// Device.TrustDevice. Repeated at each Listen start until trusted.
	EventNewDevice EventType = client.NoticeNewDevice
	// EventKeyChanged: a contact device's key differs from the pinned one;
	// repeated at each Listen start until trusted.
	EventKeyChanged EventType = client.NoticeKeyChanged
	// EventDowngrade: a message to or from a ratchet-capable device went in
	// a weaker protocol (key slots: no forward secrecy), or was refused.
	EventDowngrade EventType = client.EventDowngrade
	// EventNotDelivered: the cluster took message ID but one of the
	// recipient's devices cannot get it (a standard phone cannot open an
	// encrypted message); Error names it. SendOptions.Insecure reaches it.
	EventNotDelivered EventType = client.EventNotDelivered
	// EventWarning: the link to the cluster was lost or came back, or
	// something else the user should know; see Error.
	EventWarning EventType = "warning"
	// EventCall: a call through the cluster rings this device (State
	// ringing; Peer and FromDevice are the caller), then stops (State
	// missed, or answered_elsewhere when another device took it). Listen
	// does not answer calls: Device.Answer does.
	EventCall EventType = "call"
)

// Event is something Listen observed.
type Event struct {
	Type       EventType `json:"type"`
	From       string    `json:"from,omitempty"`        // sender account of a message
	FromDevice string    `json:"from_device,omitempty"` // sender device
	Peer       string    `json:"peer,omitempty"`        // the other account
	ID         string    `json:"id,omitempty"`          // message id
	Text       string    `json:"text,omitempty"`
	Time       time.Time `json:"time"`
	// Outgoing: a message this account sent from another of its devices.
	Outgoing bool `json:"outgoing,omitempty"`
	// Insecure: the message went without end-to-end encryption (from a
	// standard SIP phone, or sent with SendOptions.Insecure); on EventSent,
	// this device sent it so.
	Insecure bool   `json:"insecure,omitempty"`
	Protocol string `json:"protocol,omitempty"` // the secure transport protocol it came in
	// State of an EventCall: ringing, missed or answered_elsewhere.
	State string `json:"state,omitempty"`
	Error string `json:"error,omitempty"`
	// Presence is the contact's presence (EventPresence).
	Presence *PresenceInfo `json:"presence,omitempty"`
	// Trust of a message: the sending contact device's messaging
	// identity (TrustVerified, TrustUnverified, TrustUnsafe) and the
	// conversation's, as far as the contact's least trusted device.
	Trust             Trust `json:"trust,omitempty"`
	ConversationTrust Trust `json:"conversation_trust,omitempty"`
}

func event(e client.Event) Event {
	return Event{Type: EventType(e.Type), From: e.From, FromDevice: e.FromDevice, Peer: e.Peer, ID: e.ID, Text: e.Text,
		Time: e.Time, Outgoing: e.Outgoing, Insecure: e.Insecure, Protocol: e.Protocol, State: e.State, Error: e.Error,
		Presence: presenceOf(e.Presence), Trust: Trust(e.Trust), ConversationTrust: Trust(e.ConversationTrust)}
}

// SetEvents sets where the events of Send, Resend and MarkRead go (new
// devices, changed keys, downgrades, failures); nil drops them. Listen
// reports its own events to its callback.
func (d *Device) SetEvents(f func(Event)) {
	if f == nil {
		d.p.SetEvents(nil)
		return
	}
	d.p.SetEvents(func(e client.Event) { f(event(e)) })
}

// Notices returns the outstanding EventNewDevice and EventKeyChanged
// events, oldest first.
func (d *Device) Notices(ctx context.Context) ([]Event, error) {
	es, err := d.p.Notices(ctx)
	if err != nil {
		return nil, fmt.Errorf("notices: %w", err)
	}
	out := make([]Event, len(es))
	for i, e := range es {
		out[i] = event(e)
	}
	return out, nil
}

// TrustDevice confirms a device (user@domain/device) of a contact or of
// this account once its new-device or changed-key notice was checked with
// the contact out of band (compare ContactDevice.KeySHA256), and clears its
// notices.
func (d *Device) TrustDevice(ctx context.Context, device string) error {
	if err := d.p.TrustDevice(ctx, device); err != nil {
		return fmt.Errorf("trust %s: %w", device, err)
	}
	return nil
}

// Listen keeps the device registered with the cluster, delivers incoming
// messages and receipts to emit (EventReady once registered),
// and retries the outgoing queue, until ctx ends; it then unregisters and
// returns nil. emit is called from one goroutine at a time and should not
// block long: the cluster keeps a message until emit has returned.
func (d *Device) Listen(ctx context.Context, emit func(Event)) error {
	var mu sync.Mutex
	err := d.p.Listen(ctx, func(e client.Event) {
		mu.Lock()
		defer mu.Unlock()
		emit(event(e))
	})
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}
