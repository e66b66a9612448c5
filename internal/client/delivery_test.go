package client_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/amp"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/siplimit"
)

// pals enrolls two accounts on c, each listing the other unless oneSided
// (then only bravo lists alpha).
func pals(t *testing.T, c *cluster, oneSided bool) (alpha, bravo *client.Profile) {
	t.Helper()
	ctx := context.Background()
	alpha = c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	bravo = c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteEC)
	if !oneSided {
		if _, err := alpha.AddContact(ctx, "bravo@example.org"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bravo.AddContact(ctx, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alpha.Close(); bravo.Close() })
	return alpha, bravo
}

func queuedFor(t *testing.T, p *client.Profile, peer string) []client.InboxEntry {
	t.Helper()
	es, err := p.Inbox(context.Background(), peer)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// randomText is n bytes of text that gzip cannot shrink much.
func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:n]
}

// A text that cannot fit in one SIP MESSAGE is refused at send time, with
// ErrTooLarge, and leaves nothing queued to retry.
func TestSendTooLarge(t *testing.T) {
	c := startCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alpha, _ := pals(t, c, false)

	// The payload fits, the sealed envelope does not: find a text whose
	// compressed payload is just under the limit.
	fits := randomText(100000)
	for {
		b, _ := (&amp.Text{Version: 2, Body: fits, Nonce: 1}).Marshal()
		if len(b) <= siplimit.MaxBody-50 {
			break
		}
		fits = fits[:len(fits)-200]
	}
	for name, text := range map[string]string{
		"payload over the limit":  randomText(100000),
		"envelope over the limit": fits,
		"text over the AMP limit": strings.Repeat("a", amp.MaxTextSize+1),
	} {
		t.Run(name, func(t *testing.T) {
			if b, _ := (&amp.Text{Version: 2, Body: text, Nonce: 1}).Marshal(); name == "payload over the limit" && len(b) <= siplimit.MaxBody {
				t.Fatalf("test text compresses to %d bytes", len(b))
			}
			id, err := alpha.Send(ctx, "bravo@example.org", text)
			if !errors.Is(err, client.ErrTooLarge) || id != "" {
				t.Fatalf("send: %q %v", id, err)
			}
			if es := queuedFor(t, alpha, "bravo@example.org"); len(es) != 0 {
				t.Fatalf("a message that can never pass is kept: %+v", es[0].State)
			}
		})
	}
	// What compresses below the limit goes, however long the text.
	long := strings.Repeat("all work and no play ", 10000)
	if _, err := alpha.Send(ctx, "bravo@example.org", long); err != nil {
		t.Fatalf("long compressible text: %v", err)
	}
}

// A message the recipient could never open (the sender has not listed the
// recipient, so the recipient cannot read the sender's keys) is refused at
// send time, never reported as sent.
func TestSendOneSided(t *testing.T) {
	c := startCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	alpha, _ := pals(t, c, true)
	_, err := alpha.Send(ctx, "bravo@example.org", "hello?")
	if !errors.Is(err, client.ErrNotListed) {
		t.Fatalf("send: %v", err)
	}
	es := queuedFor(t, alpha, "bravo@example.org")
	if len(es) != 1 || es[0].State != client.StateFailed {
		t.Fatalf("inbox: %+v", es)
	}
}

func TestListenTwice(t *testing.T) {
	c := startCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, bravo := pals(t, c, false)
	lctx, lcancel := context.WithCancel(ctx)
	events := make(chan client.Event, 16)
	done := make(chan error, 1)
	go func() {
		done <- bravo.Listen(lctx, func(e client.Event) {
			select {
			case events <- e:
			default:
			}
		})
	}()
	// The first listen holds the profile once it is registered.
	for ready := false; !ready; {
		select {
		case e := <-events:
			ready = e.Type == "ready"
		case err := <-done:
			t.Fatalf("first listen ended: %v", err)
		case <-ctx.Done():
			t.Fatal("the first listen never registered")
		}
	}
	second, err := client.Open(ctx, bravo.Dir, []byte("bravo password"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	tctx, tcancel := context.WithTimeout(ctx, 5*time.Second)
	defer tcancel()
	if err := second.Listen(tctx, func(client.Event) {}); !errors.Is(err, client.ErrListening) {
		t.Fatalf("second listen: %v", err)
	}
	lcancel()
	if err := <-done; err != nil {
		t.Fatalf("first listen: %v", err)
	}
	// Once the first has stopped, the profile can listen again.
	tctx2, tcancel2 := context.WithTimeout(ctx, 2*time.Second)
	defer tcancel2()
	if err := second.Listen(tctx2, func(client.Event) {}); err != nil {
		t.Fatalf("listen after the first stopped: %v", err)
	}
}

// relay forwards TCP to addr and can be cut (connections closed, new ones
// refused) and restored.
type relay struct {
	ln    net.Listener
	to    string
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func newRelay(t *testing.T, to string) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, to: to}
	t.Cleanup(func() { ln.Close(); r.setCut(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			if r.cut {
				r.mu.Unlock()
				c.Close()
				continue
			}
			up, err := net.Dial("tcp", to)
			if err != nil {
				r.mu.Unlock()
				c.Close()
				continue
			}
			r.conns = append(r.conns, c, up)
			r.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return r
}

func (r *relay) setCut(cut bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cut = cut
	if cut {
		for _, c := range r.conns {
			c.Close()
		}
		r.conns = nil
	}
}

// A device that cannot check a message's sender for now (the key service is
// unreachable) answers 5xx; the cluster keeps the copy and delivers it
// again later instead of losing it.
func TestTemporaryFailureKeepsMessage(t *testing.T) {
	c := startCluster(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rl := newRelay(t, c.addr)
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	defer alpha.Close()
	bravo, err := client.Enroll(ctx, client.EnrollRequest{Dir: filepath.Join(t.TempDir(), "p"), User: "bravo@example.org", Device: "b1",
		Server: rl.ln.Addr().String(), CAFile: filepath.Join(c.cfg.DataDir, ca.CACertFile), Code: c.code("bravo@example.org"),
		Password: []byte("bravo password"), Suite: keys.SuiteEC}, &client.Options{KDF: fastKDF})
	if err != nil {
		t.Fatal(err)
	}
	defer bravo.Close()
	if _, err := alpha.AddContact(ctx, "bravo@example.org"); err != nil {
		t.Fatal(err)
	}
	if _, err := bravo.AddContact(ctx, "alpha@example.org"); err != nil {
		t.Fatal(err)
	}
	events := make(chan client.Event, 64)
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- bravo.Listen(lctx, func(e client.Event) { events <- e }) }()
	defer func() { lcancel(); <-done }()
	registered := time.After(30 * time.Second)
	for ready := false; !ready; {
		select {
		case e := <-events:
			ready = e.Type == "ready"
		case <-registered:
			t.Fatal("bravo's listen did not register within 30 s")
		}
	}

	rl.setCut(true)
	id, err := alpha.Send(ctx, "bravo@example.org", "kept through the outage")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the node has tried and been deferred
	rl.setCut(false)
	deadline := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Type == "message" && e.ID == id {
				return
			}
		case <-deadline:
			t.Fatal("the message deferred during the outage never arrived")
		}
	}
}
