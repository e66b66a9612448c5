package sipua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// responder answers every INVITE with code on a UDP address.
func responder(t *testing.T, code int, reason string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	go srv.ServeUDP(pc)
	t.Cleanup(func() { srv.Close(); ua.Close(); pc.Close() })
	return pc.LocalAddr().String()
}

// TestDialFailuresInWords: a call that is not answered says why in words,
// and callers can branch on the reason.
func TestDialFailuresInWords(t *testing.T) {
	dir := t.TempDir()
	idle, err := NewUA(Config{Listen: "127.0.0.1:0"}) // nobody accepts: 486
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	for _, tt := range []struct {
		name, transport, target string
		want                    error
		words                   string
	}{
		{"busy", "udp", idle.URI(), ErrBusy, "is busy"},
		{"declined", "udp", "sip:x@" + responder(t, 603, "Decline"), ErrDeclined, "declined the call"},
		{"not available", "udp", "sip:x@" + responder(t, 480, "Temporarily Unavailable"), ErrNoAnswer, "no answer from"},
		{"no such user", "udp", "sip:x@" + responder(t, 404, "Not Found"), ErrUnreachable, "no such user"},
		{"nothing listening", "tcp", "sip:x@" + closedAddr + ";transport=tcp", ErrUnreachable, "cannot reach"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ua, err := NewUA(Config{Listen: "127.0.0.1:0", Transport: tt.transport})
			if err != nil {
				t.Fatal(err)
			}
			defer ua.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = ua.Dial(ctx, tt.target, CallOptions{Cache: cacheAt(t, filepath.Join(dir, tt.name)), NoOpus: true})
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.words) {
				t.Fatalf("got %v, want %v with %q", err, tt.want, tt.words)
			}
			if strings.Contains(err.Error(), "Invite failed") || strings.Contains(err.Error(), "transaction") {
				t.Fatalf("SIP stack wording leaks: %v", err)
			}
		})
	}

	// The transaction timeout (Timer B, 32 s) in words.
	timeout := fmt.Errorf("Timer_B timed out. %w", sip.ErrTransactionTimeout)
	for _, tt := range []struct {
		ringing bool
		want    error
		words   string
	}{{false, ErrUnreachable, "cannot reach sip:x@192.0.2.1: no response"}, {true, ErrNoAnswer, "nobody answered"}} {
		err := dialFailure("sip:x@192.0.2.1", timeout, tt.ringing)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.words) || strings.Contains(err.Error(), "Timer_B") {
			t.Errorf("timeout, ringing %v: %v", tt.ringing, err)
		}
	}
}
