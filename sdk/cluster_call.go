package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/sipua"
)

// Why a call through the cluster did not connect (errors.Is), besides
// ErrBusy, ErrDeclined and ErrNoAnswer.
var (
	// ErrNotContact: the cluster refused the call before anything rang:
	// caller and callee must each have the other in their contacts.
	ErrNotContact = sipua.ErrNotContact
	// ErrOffline: none of the callee's devices is connected.
	ErrOffline = sipua.ErrOffline
)

// CallCause is a short name of why a call did not connect, for JSON:
// busy, declined, no_answer, offline, not_contact, unreachable, refused
// or relay_unavailable; "" for other errors.
func CallCause(err error) string {
	if c := sipua.Cause(err); c != "" {
		return c
	}
	if errors.Is(err, ErrRelayUnavailable) {
		return "relay_unavailable"
	}
	return ""
}

// Call calls a person through the home cluster: target is USER@DOMAIN,
// and every registered device of that account rings (only
// CallOptions.Device when set) until one answers. The INVITE goes over
// this device's TLS connection to the cluster, which checks that caller
// and callee are mutual contacts before anything rings. It returns once
// the call is connected; the media is SRTP keyed by ZRTP end to end.
func (d *Device) Call(ctx context.Context, target string, o CallOptions) (*Call, error) {
	acct, err := ident.ParseAccount(strings.TrimPrefix(target, "sip:"))
	if err != nil {
		return nil, fmt.Errorf("call %s: want USER@DOMAIN: %w", target, err)
	}
	if err := d.UseClusterRelay(ctx, &o); err != nil {
		return nil, fmt.Errorf("call %s: %w", target, err)
	}
	so, err := callOptions(o, d.p.ZRTPStore(), d.p.CallSigner(), d.p.Logger())
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", target, err)
	}
	line, err := d.p.OpenCallLine(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("call %s: %w", target, err)
	}
	uri := "sip:" + acct.String()
	if o.Device != "" {
		if strings.ContainsAny(o.Device, ";?<>@ \\\"") {
			line.Close()
			return nil, fmt.Errorf("call %s: device name %q", target, o.Device)
		}
		uri += ";device=" + o.Device
	}
	rctx, cancel := context.WithCancel(ctx)
	var timedOut atomic.Bool
	if o.RingTimeout > 0 {
		t := time.AfterFunc(o.RingTimeout, func() { timedOut.Store(true); cancel() })
		defer t.Stop()
	}
	c, err := line.UA().Dial(rctx, uri, so)
	if err != nil {
		cancel()
		line.Close()
		if timedOut.Load() && ctx.Err() == nil {
			return nil, &sipua.DialError{Target: uri, Err: sipua.ErrNoAnswer,
				Detail: fmt.Sprintf("no answer from %s within %v", acct, o.RingTimeout)}
		}
		var de *sipua.DialError
		if errors.As(err, &de) {
			return nil, err
		}
		return nil, fmt.Errorf("call %s: %w", target, err)
	}
	go func() {
		<-c.Done()
		cancel()
		line.Close()
	}()
	return &Call{c: c}, nil
}

// Answer registers this device with the cluster and answers the next
// call that rings it. It holds the profile's listen lock meanwhile
// (ErrListening if 'phonex listen' runs for it): a device listens or
// answers, not both at once.
func (d *Device) Answer(ctx context.Context, o CallOptions) (*Call, error) {
	if err := d.UseClusterRelay(ctx, &o); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	so, err := callOptions(o, d.p.ZRTPStore(), d.p.CallSigner(), d.p.Logger())
	if err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	line, err := d.p.OpenCallLine(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	if so.OnEvent != nil {
		so.OnEvent(sipua.Event{Type: sipua.EventListening, Time: time.Now(), Peer: d.Identity()})
	}
	c, err := line.UA().Accept(ctx, so)
	if err != nil {
		line.Close()
		return nil, fmt.Errorf("answer: %w", err)
	}
	go func() {
		<-c.Done()
		line.Close()
	}()
	return &Call{c: c}, nil
}

// Decline registers this device and refuses the next call that rings it
// (603 Decline): the caller learns the call was declined, and the
// callee's other devices stop ringing. It returns the caller.
func (d *Device) Decline(ctx context.Context) (string, error) {
	line, err := d.p.OpenCallLine(ctx, true)
	if err != nil {
		return "", fmt.Errorf("decline: %w", err)
	}
	defer line.Close()
	who, err := line.UA().Decline(ctx)
	if err != nil {
		return who, fmt.Errorf("decline: %w", err)
	}
	return who, nil
}
