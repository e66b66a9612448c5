package sipua

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/zrtp"
)

// callOnce places one call between the two stores, lets confirm act on it
// while it is up, and hangs up; it returns both sides' key agreement.
func callOnce(t *testing.T, a, b SecretStore, during func(p pair)) (caller, callee *SecureInfo) {
	t.Helper()
	p := dialPair(t, "udp", CallOptions{Cache: a, NoOpus: true}, CallOptions{Cache: b, NoOpus: true})
	caller, callee = waitSecure(t, p.callerEvents), waitSecure(t, p.calleeEv)
	// Let the retained secrets be stored (Conf2ACK, §4.6.1).
	zrtpDone(t, p)
	if during != nil {
		during(p)
	}
	if err := p.caller.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.callee.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("callee did not see the BYE")
	}
	return caller, callee
}

// TestSASConfirmation: a peer becomes verified only once the user confirms
// the SAS that was shown, after the call by naming it; after a
// retained-secret mismatch the peer stays unsafe, and the new secret is not
// kept, until that call's SAS is confirmed.
func TestSASConfirmation(t *testing.T) {
	dir := t.TempDir()
	a, b := cacheAt(t, filepath.Join(dir, "a")), cacheAt(t, filepath.Join(dir, "b"))
	za, _ := a.ZID()
	zb, _ := b.ZID()

	sa, sb := callOnce(t, a, b, nil)
	if sa.Trust != TrustUnverified || sb.Trust != TrustUnverified {
		t.Fatalf("first call: trust %s %s", sa.Trust, sb.Trust)
	}
	// Nobody confirmed: the second call is not "previously verified".
	sa2, _ := callOnce(t, a, b, nil)
	if sa2.PreviouslyVerified || sa2.Trust != TrustUnverified || !sa2.CacheMatched {
		t.Fatalf("second call without confirmation: %+v", sa2)
	}

	// Words that are not the SAS of the last call change nothing.
	wrong := "abcd"
	if sa2.SAS == wrong {
		wrong = "efgh"
	}
	if _, err := ConfirmLastCall(a, zb.String(), wrong); !errors.Is(err, ErrSASMismatch) {
		t.Fatalf("wrong SAS: %v", err)
	}
	if _, err := ConfirmLastCall(a, zb.String(), sa.SAS); sa.SAS != sa2.SAS && !errors.Is(err, ErrSASMismatch) {
		t.Fatalf("SAS of an earlier call accepted: %v", err)
	}
	if _, err := ConfirmLastCall(a, "sip:nobody@127.0.0.1:1", sa2.SAS); !errors.Is(err, ErrNoCallRemembered) {
		t.Fatalf("unknown peer: %v", err)
	}
	// The right words, by ZID on one side and by SIP address on the other.
	if c, err := ConfirmLastCall(a, zb.String(), strings.ToUpper(sa2.SAS)); err != nil || c.Unsafe {
		t.Fatalf("confirm by ZID: %+v %v", c, err)
	}
	_, rb, err := FindPeer(b, za.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ConfirmLastCall(b, rb.Last.Peer, sa2.SAS); err != nil {
		t.Fatalf("confirm by address %q: %v", rb.Last.Peer, err)
	}
	sa3, sb3 := callOnce(t, a, b, nil)
	if !sa3.PreviouslyVerified || sa3.Trust != TrustVerified || !sb3.PreviouslyVerified {
		t.Fatalf("after confirmation: caller %+v callee %+v", sa3, sb3)
	}

	// b loses its cache (or a man in the middle answers): a sees a
	// retained-secret mismatch.
	m := lostCache(t, b, filepath.Join(dir, "m"))
	sa4, _ := callOnce(t, a, m, nil)
	if sa4.Trust != TrustUnsafe || sa4.PreviouslyVerified {
		t.Fatalf("mismatch: %+v", sa4)
	}
	ra, _, _ := a.Peer(mustZID(t, m))
	if !ra.Unsafe || ra.Verified || ra.Last.Pending == nil || !ra.Last.Unsafe {
		t.Fatalf("after the mismatch the record is %+v", ra)
	}
	// The unconfirmed secret of the unsafe call was not taken: the next
	// call mismatches again and stays unsafe.
	sa5, _ := callOnce(t, a, m, nil)
	if sa5.Trust != TrustUnsafe {
		t.Fatalf("second call after an unconfirmed mismatch: %+v", sa5)
	}
	// Confirming the unsafe call's SAS (on both sides: m, holding a's
	// secret of the call before, saw a mismatch too) keeps its secret and
	// verifies.
	for _, s := range []struct {
		st   SecretStore
		peer zrtp.ZID
	}{{a, mustZID(t, m)}, {m, za}} {
		c, err := ConfirmLastCall(s.st, s.peer.String(), sa5.SAS)
		if err != nil || !c.Unsafe {
			t.Fatalf("confirm the unsafe call: %+v %v", c, err)
		}
	}
	sa6, _ := callOnce(t, a, m, nil)
	if sa6.Trust != TrustVerified || !sa6.CacheMatched {
		t.Fatalf("after confirming the unsafe call: %+v", sa6)
	}
}

// TestSASConfirmedInCall: the user confirms during the call (after a
// mismatch too), or finds the SAS different.
func TestSASConfirmedInCall(t *testing.T) {
	dir := t.TempDir()
	a, b := cacheAt(t, filepath.Join(dir, "a")), cacheAt(t, filepath.Join(dir, "b"))
	confirmBoth := func(p pair) {
		if err := p.caller.ConfirmSAS(); err != nil {
			t.Fatal(err)
		}
		if err := p.callee.ConfirmSAS(); err != nil {
			t.Fatal(err)
		}
		if p.callerEvents.has(EventSASVerified) == nil {
			t.Fatal("no sas_verified event")
		}
	}
	callOnce(t, a, b, confirmBoth)
	if sa, _ := callOnce(t, a, b, nil); sa.Trust != TrustVerified {
		t.Fatalf("after confirming in the call: %+v", sa)
	}
	m := lostCache(t, b, filepath.Join(dir, "m"))
	sa, _ := callOnce(t, a, m, func(p pair) {
		if err := p.caller.ConfirmSAS(); err != nil {
			t.Fatal(err)
		}
		if e := p.callerEvents.has(EventSASVerified); e == nil || !strings.Contains(e.Reason, "unsafe") {
			t.Fatalf("confirmation after a mismatch: %+v", e)
		}
	})
	if sa.Trust != TrustUnsafe {
		t.Fatalf("mismatch call: %+v", sa)
	}
	if sa, _ := callOnce(t, a, m, nil); sa.Trust != TrustVerified {
		t.Fatalf("after confirming the unsafe call in the call: %+v", sa)
	}
	// The user hears a different SAS: unsafe, no secret kept, and the
	// peer stays unsafe in later calls until a SAS is confirmed.
	n := lostCache(t, b, filepath.Join(dir, "n"))
	callOnce(t, a, n, func(p pair) {
		if err := p.caller.RejectSAS(); err != nil {
			t.Fatal(err)
		}
	})
	if r, _, _ := a.Peer(mustZID(t, n)); !r.Unsafe || r.Verified || len(r.RS1) != 0 || r.Last.Pending != nil {
		t.Fatalf("after rejecting: %+v", r)
	}
	// (n kept the rejected call's secret and now sees a mismatch: both
	// confirm.)
	sa, _ = callOnce(t, a, n, confirmBoth)
	if sa.Trust != TrustUnsafe {
		t.Fatalf("call after rejecting: %+v", sa)
	}
	if sa, _ := callOnce(t, a, n, nil); sa.Trust != TrustVerified {
		t.Fatalf("after confirming again: %+v", sa)
	}
}

// lostCache is peer's ZID without its retained secrets: the peer after
// losing its cache, or a man in the middle claiming its ZID.
func lostCache(t *testing.T, peer *FileStore, dir string) *FileStore {
	t.Helper()
	c := cacheAt(t, dir)
	b, err := os.ReadFile(filepath.Join(peer.Dir(), "zid"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zid"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

func mustZID(t *testing.T, s SecretStore) zrtp.ZID {
	t.Helper()
	z, err := s.ZID()
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// TestEqualZIDSaysWhatToDo: two ends sharing one cache get an error that
// says so and what to do.
func TestEqualZIDSaysWhatToDo(t *testing.T) {
	shared := cacheAt(t, t.TempDir())
	p := dialPair(t, "udp", CallOptions{Cache: shared, NoOpus: true}, CallOptions{Cache: shared, NoOpus: true})
	var errs []error
	for _, c := range []*Call{p.caller, p.callee} {
		select {
		case <-c.Done():
		case <-time.After(15 * time.Second):
			t.Fatal("the call with equal ZIDs did not end")
		}
		errs = append(errs, c.Err())
	}
	// The side that sees the peer's Hello first fails; the other may see
	// its BYE before its ZRTP Error.
	err := errors.Join(errs...)
	if !errors.Is(err, ErrEqualZID) || !strings.Contains(err.Error(), "--profile") {
		t.Fatalf("calls ended with %v", err)
	}
}

// TestNoOpusLibraryOffersG711: without libopus the offer has G.711 only,
// the call works, and a warning says why.
func TestNoOpusLibraryOffersG711(t *testing.T) {
	if err := codec.LoadOpusLibrary("libopus-phonex-missing.so.9"); err == nil {
		t.Fatal("a missing libopus loaded")
	}
	t.Cleanup(func() { codec.LoadOpusLibrary(codec.DefaultOpusLibrary) })
	dir := t.TempDir()
	p := dialPair(t, "udp", CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a"))}, CallOptions{Cache: cacheAt(t, filepath.Join(dir, "b"))})
	defer p.caller.Hangup(context.Background())
	waitSecure(t, p.callerEvents)
	for _, c := range p.caller.local.Codecs {
		if c.Name != "PCMU" && c.Name != "PCMA" && c.Name != "telephone-event" {
			t.Fatalf("offer without libopus has %s", c)
		}
	}
	if c := p.callerEvents.has(EventConnected); c == nil || c.Codec != "PCMU/8000" {
		t.Fatalf("connected: %+v", c)
	}
	if w := p.callerEvents.has(EventWarning); w == nil || !strings.Contains(w.Reason, "G.711") || !strings.Contains(w.Reason, "libopus-phonex-missing") {
		t.Fatalf("warning: %+v", w)
	}
}
