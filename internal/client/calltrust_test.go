package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/sipua"
)

type callEvents struct {
	mu  sync.Mutex
	evs []sipua.Event
}

func (c *callEvents) on(e sipua.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.evs = append(c.evs, e)
}

func (c *callEvents) index(typ sipua.EventType, reason string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.evs {
		if e.Type == typ && strings.Contains(e.Reason, reason) {
			return i
		}
	}
	return -1
}

// profileCall places a direct call from a to b on loopback with the
// profiles' ZRTP stores and signers, runs during, and hangs up. SIP goes
// over TCP: this test binary links the node, whose SIP listener shrinks
// sipgo's process-wide UDP read buffer to 512 bytes, too small for an
// INVITE datagram.
func profileCall(t *testing.T, a, b *client.Profile, during func(caller, callee *sipua.Call)) (sa, sb *sipua.SecureInfo, ea, eb *callEvents) {
	t.Helper()
	ua, err := sipua.NewUA(sipua.Config{Listen: "127.0.0.1:0", Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	ub, err := sipua.NewUA(sipua.Config{Listen: "127.0.0.1:0", Transport: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Close()
	ea, eb = &callEvents{}, &callEvents{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type res struct {
		c   *sipua.Call
		err error
	}
	acc := make(chan res, 1)
	go func() {
		c, err := ub.Accept(ctx, sipua.CallOptions{Cache: b.ZRTPStore(), Signer: b.CallSigner(), NoOpus: true, OnEvent: eb.on})
		acc <- res{c, err}
	}()
	caller, err := ua.Dial(ctx, ub.URI(), sipua.CallOptions{Cache: a.ZRTPStore(), Signer: a.CallSigner(), NoOpus: true, OnEvent: ea.on})
	if err != nil {
		t.Fatal(err)
	}
	r := <-acc
	if r.err != nil {
		t.Fatal(r.err)
	}
	for caller.Secure() == nil || r.c.Secure() == nil {
		if ctx.Err() != nil {
			t.Fatal("no keys")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Each side sends SRTP only once its retained secrets are stored (the
	// initiator's with Conf2ACK, RFC 6189 §4.6.1): audio both ways means
	// both are.
	for caller.Stats().PacketsReceived == 0 || r.c.Stats().PacketsReceived == 0 {
		if ctx.Err() != nil {
			t.Fatalf("no audio both ways: caller %+v, callee %+v", caller.Stats(), r.c.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if during != nil {
		during(caller, r.c)
	}
	caller.Hangup(context.Background())
	<-r.c.Done()
	return caller.Secure(), r.c.Secure(), ea, eb
}

func deviceTrust(t *testing.T, p *client.Profile, account, device string) (contact, dev string) {
	t.Helper()
	cs, err := p.Contacts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.User == account {
			for _, d := range c.Devices {
				if d.Name == device {
					return c.Trust, d.Trust
				}
			}
		}
	}
	t.Fatalf("no contact device %s/%s", account, device)
	return "", ""
}

// TestCallTrustProfiles: an ec-suite and an rsa-suite device verify each
// other's signed zrtp-hash and bind their messaging identities; the SAS
// confirmed in the call verifies the peer's messaging identity for the
// keys pinned then; a changed key makes it unverified again and is
// announced before the call rings; a trust mark for keys other than the
// pinned ones is refused.
func TestCallTrustProfiles(t *testing.T) {
	c := startCluster(t, nil)
	ctx := context.Background()
	alpha := c.enroll("alpha@example.org", "a1", "alpha password", keys.SuiteEC)
	defer alpha.Close()
	bravo := c.enroll("bravo@example.org", "b1", "bravo password", keys.SuiteRSA)
	defer bravo.Close()
	contacts(t, alpha, bravo, "alpha@example.org", "bravo@example.org")

	sa, sb, _, _ := profileCall(t, alpha, bravo, func(caller, _ *sipua.Call) {
		if err := caller.ConfirmSAS(); err != nil {
			t.Error(err)
		}
	})
	for side, s := range map[string]*sipua.SecureInfo{"ec caller": sa, "rsa callee": sb} {
		if s.SignedHash != sipua.SignedHashVerified || s.AuxSecret != sipua.AuxMatched || s.Trust == sipua.TrustUnsafe {
			t.Errorf("%s: %+v", side, s)
		}
	}
	if ct, dt := deviceTrust(t, alpha, "bravo@example.org", "b1"); ct != client.TrustVerified || dt != client.TrustVerified {
		t.Errorf("alpha's view of bravo after confirming: %s %s", ct, dt)
	}
	if ct, _ := deviceTrust(t, bravo, "alpha@example.org", "a1"); ct != client.TrustUnverified {
		t.Errorf("bravo did not confirm: %s", ct)
	}
	if tr, err := alpha.ConversationTrust(ctx, "bravo@example.org"); err != nil || tr != client.TrustVerified {
		t.Errorf("conversation: %s %v", tr, err)
	}

	// A mark for keys other than the pinned ones is refused.
	st := alpha.ZRTPStore().(sipua.MessagingTrustStore)
	if err := st.SetMessagingTrust("bravo@example.org/b1", "not:the-pinned-keys", sipua.TrustVerified); !errors.Is(err, sipua.ErrKeysChangedSince) {
		t.Errorf("mark for other keys: %v", err)
	}

	// bravo's key changes (as pinning records it): unverified again, and
	// a call from that device says so before it rings.
	if err := client.MarkKeyChanged(ctx, alpha, "bravo@example.org/b1"); err != nil {
		t.Fatal(err)
	}
	if ct, dt := deviceTrust(t, alpha, "bravo@example.org", "b1"); ct != client.TrustUnverified || dt != client.TrustUnverified {
		t.Errorf("after the key change: %s %s", ct, dt)
	}
	if ds, err := alpha.CallSigner().ChangedKeys("bravo@example.org"); err != nil || len(ds) != 1 || ds[0] != "bravo@example.org/b1" {
		t.Errorf("changed keys: %v %v", ds, err)
	}
	_, _, _, eb := profileCall(t, bravo, alpha, nil)
	alert, ringing := eb.index(sipua.EventAlert, "key of bravo@example.org/b1 changed"), eb.index(sipua.EventRinging, "")
	if alert < 0 || ringing < 0 || alert > ringing {
		t.Errorf("key-change alert at %d, ringing at %d", alert, ringing)
	}

	// bravo rejects the SAS of a call: alpha's messaging identity is
	// unsafe for bravo, and the conversation with alpha.
	profileCall(t, alpha, bravo, func(_, callee *sipua.Call) {
		if err := callee.RejectSAS(); err != nil {
			t.Error(err)
		}
	})
	if ct, dt := deviceTrust(t, bravo, "alpha@example.org", "a1"); ct != client.TrustUnsafe || dt != client.TrustUnsafe {
		t.Errorf("after rejecting the SAS: %s %s", ct, dt)
	}
}
