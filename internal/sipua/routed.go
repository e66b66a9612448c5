package sipua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// RoutedConfig configures a user agent that places and takes calls through
// the device's home node over the device's SIP over TLS connection, which
// authenticates it with its certificate. The node record-routes every
// dialog, so all signalling of a call passes over that connection; media
// goes end to end between the SDP addresses.
type RoutedConfig struct {
	// Client sends requests over the device's connection to the node.
	// The requests the node sends back over it must reach the UA's
	// HandleInvite, HandleAck and HandleBye.
	Client *sipgo.Client
	// Proxy is the node's SIP address, host:port.
	Proxy string
	// AOR is the account's address of record, user@domain.
	AOR string
	// RTPHost is the local address for media (an IP address).
	RTPHost string
	Logger  *slog.Logger
}

// Why a call through the node did not connect, besides ErrBusy,
// ErrDeclined and ErrNoAnswer.
var (
	// ErrNotContact: the node refused the call (403) before any device
	// rang: caller and callee must each have the other in their contacts
	// (an unknown address gets the same answer).
	ErrNotContact = errors.New("not a mutual contact")
	// ErrOffline: none of the callee's devices is registered (480).
	ErrOffline = errors.New("callee offline")
)

// NewRoutedUA makes a user agent for calls through the home node.
func NewRoutedUA(cfg RoutedConfig) (*UA, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil || cfg.Proxy == "" {
		return nil, errors.New("routed SIP user agent: no connection to the node")
	}
	user, domain, ok := strings.Cut(cfg.AOR, "@")
	if !ok || user == "" || domain == "" {
		return nil, fmt.Errorf("routed SIP user agent: address of record %q: want user@domain", cfg.AOR)
	}
	ip, err := netip.ParseAddr(cfg.RTPHost)
	if err != nil {
		return nil, fmt.Errorf("routed SIP user agent: media address %q: %w", cfg.RTPHost, err)
	}
	u := &UA{log: log, user: user, transport: "TLS", host: ip.Unmap().String(), invites: make(chan *incoming), calls: map[string]*Call{},
		proxy: cfg.Proxy, aor: sip.Uri{Scheme: "sip", User: user, Host: domain}}
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: domain, UriParams: sip.NewParams()}}
	contact.Address.UriParams.Add("transport", "tls")
	u.dua = &sipgo.DialogUA{Client: cfg.Client, ContactHDR: contact}
	return u, nil
}

// HandleInvite, HandleAck and HandleBye take the requests the node sends
// over the device's connection (a routed user agent has no listener).
func (u *UA) HandleInvite(req *sip.Request, tx sip.ServerTransaction) { u.onInvite(req, tx) }

// HandleAck: see HandleInvite.
func (u *UA) HandleAck(req *sip.Request, tx sip.ServerTransaction) { u.onAck(req, tx) }

// HandleBye: see HandleInvite.
func (u *UA) HandleBye(req *sip.Request, tx sip.ServerTransaction) { u.onBye(req, tx) }

// routedCaller is who calls, as the node asserts it from the caller's
// certificate (P-Asserted-Identity, RFC 3325 §9.1): user@domain/device.
// Only a routed user agent believes it, since only the node can send it.
func routedCaller(u *UA, req *sip.Request) string {
	if u.proxy == "" {
		return ""
	}
	h := req.GetHeader("P-Asserted-Identity")
	if h == nil {
		return ""
	}
	v := strings.Trim(strings.TrimSpace(h.Value()), "<>")
	var uri sip.Uri
	if err := sip.ParseUri(v, &uri); err != nil || uri.User == "" {
		return ""
	}
	who := uri.User + "@" + uri.Host
	if uri.UriParams != nil {
		if gr, ok := uri.UriParams.Get("gr"); ok && gr != "" {
			who += "/" + gr
		}
	}
	return who
}

// Decline waits for the next incoming call and refuses it with 603
// Decline (RFC 3261 §21.6.2): the caller is told the callee does not
// want to talk, and the node stops the callee's other devices ringing.
func (u *UA) Decline(ctx context.Context) (string, error) {
	var in *incoming
	select {
	case in = <-u.invites:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer close(in.done)
	peer := "sip:?"
	if f := in.req.From(); f != nil {
		peer = f.Address.String()
	}
	if who := routedCaller(u, in.req); who != "" {
		peer = who
	}
	if err := in.tx.Respond(sip.NewResponseFromRequest(in.req, 603, "Decline", nil)); err != nil {
		return peer, fmt.Errorf("603 Decline: %w", err)
	}
	return peer, nil
}

// Ring reports an incoming call without answering it: 180 Ringing, then
// it waits until the caller or the node cancels it or ctx ends. It
// returns the caller and whether another device answered (the node's
// CANCEL says so, RFC 3326 Reason cause 200).
func Ring(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, ringing func(caller string)) (caller string, elsewhere bool) {
	caller = "sip:?"
	if f := req.From(); f != nil {
		caller = f.Address.User + "@" + f.Address.Host
	}
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
		var uri sip.Uri
		if sip.ParseUri(strings.Trim(strings.TrimSpace(h.Value()), "<>"), &uri) == nil && uri.User != "" {
			caller = uri.User + "@" + uri.Host
			if gr, ok := uri.UriParams.Get("gr"); ok && gr != "" {
				caller += "/" + gr
			}
		}
	}
	cancelled := make(chan bool, 1)
	tx.OnCancel(func(c *sip.Request) {
		r := c.GetHeader("Reason")
		cancelled <- r != nil && strings.Contains(r.Value(), "cause=200")
	})
	if err := tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil)); err != nil {
		return caller, false
	}
	ringing(caller)
	select {
	case elsewhere = <-cancelled:
	case <-tx.Done():
		select {
		case elsewhere = <-cancelled:
		case <-time.After(50 * time.Millisecond):
		}
	case <-ctx.Done():
		_ = tx.Respond(sip.NewResponseFromRequest(req, 480, "Temporarily Unavailable", nil))
	}
	return caller, elsewhere
}

// dialFailure turns why a call did not connect into words. Through the
// node, 403 and 480 are the node's own answers (not a mutual contact,
// callee offline); peer to peer they come from the peer.
func (u *UA) dialFailure(target string, err error, ringing bool) error {
	e := dialFailure(target, err, ringing)
	var de *DialError
	if u.proxy == "" || !errors.As(e, &de) {
		return e
	}
	who := strings.TrimPrefix(strings.TrimPrefix(target, "sip:"), "sips:")
	if i := strings.IndexByte(who, ';'); i >= 0 {
		who = who[:i]
	}
	// The person, not the URI with its device parameter.
	de.Detail = strings.ReplaceAll(de.Detail, target, who)
	switch de.Status {
	case 403:
		de.Err, de.Detail = ErrNotContact, fmt.Sprintf("the cluster refused the call: you and %s are not mutual contacts (each must add the other: phonex contacts add)", who)
	case 404:
		de.Err, de.Detail = ErrUnreachable, fmt.Sprintf("cannot reach %s: the cluster calls only addresses of its own domain (%d %s)", who, de.Status, reasonOf(err))
	case 480:
		de.Err, de.Detail = ErrOffline, fmt.Sprintf("%s is offline: none of its devices is connected to the cluster", who)
	case 408:
		de.Err, de.Detail = ErrNoAnswer, fmt.Sprintf("no answer from %s: it rang but nobody answered", who)
	case 486, 600:
		de.Detail = fmt.Sprintf("%s is busy", who)
	case 603:
		de.Detail = fmt.Sprintf("%s declined the call", who)
	}
	return de
}

// Cause is a short name of why a call did not connect, for JSON: busy,
// declined, no_answer, offline, not_contact, unreachable or refused.
func Cause(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{{ErrBusy, "busy"}, {ErrDeclined, "declined"}, {ErrNoAnswer, "no_answer"}, {ErrOffline, "offline"},
		{ErrNotContact, "not_contact"}, {ErrUnreachable, "unreachable"}, {ErrRefused, "refused"}} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return ""
}

// reasonOf is the reason phrase of the final response in err, if any.
func reasonOf(err error) string {
	var rp *sipgo.ErrDialogResponse
	var rv sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &rp):
		return rp.Res.Reason
	case errors.As(err, &rv):
		return rv.Res.Reason
	}
	return ""
}
