package sipua

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/ice"
	"github.com/phonex/phonex/internal/ice/iceturn"
	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/wav"
)

// toneCall places a call with a 440 Hz tone from the caller, hangs up
// after 3 s and returns both sides' events and the callee's recording.
func toneCall(t *testing.T, caller, callee CallOptions) (pair, string) {
	t.Helper()
	dir := t.TempDir()
	caller.Cache, callee.Cache = cacheAt(t, filepath.Join(dir, "a")), cacheAt(t, filepath.Join(dir, "b"))
	caller.Play = &wav.Audio{SampleRate: 16000, Samples: dsp.Sine(16000*3, 16000, 440, 0.5)}
	callee.Record = filepath.Join(dir, "rec.wav")
	p := dialPair(t, "udp", caller, callee)
	sa, sb := waitSecure(t, p.callerEvents), waitSecure(t, p.calleeEv)
	if sa.SAS == "" || sa.SAS != sb.SAS {
		t.Fatalf("SAS %q and %q", sa.SAS, sb.SAS)
	}
	time.Sleep(3 * time.Second)
	if err := p.caller.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.callee.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("callee did not see the BYE within 15 s")
	}
	return p, callee.Record
}

func checkTone(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := wav.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	freq, purity := dsp.DominantFrequency(a.Samples, a.SampleRate, 200, 2000)
	if freq < 435 || freq > 445 {
		t.Fatalf("recorded %.1f Hz (purity %.2f), want 440", freq, purity)
	}
}

// checkPath checks the path event and the end-of-call statistics.
func checkPath(t *testing.T, who string, r *recorder, want ice.Path, withICE bool) {
	t.Helper()
	e := r.has(EventPath)
	if e == nil || e.Path != string(want) {
		t.Fatalf("%s: path event %+v, want %q", who, e, want)
	}
	end := r.has(EventEnded)
	if end == nil || end.Stats.Path != string(want) || end.Stats.ICE != withICE {
		t.Fatalf("%s: ended %+v, want path %q ice %v", who, end, want, withICE)
	}
	// About 3 s of audio: at least 2 s worth of packets.
	if withICE && end.Stats.PacketsReceived < uint64(2*time.Second/DefaultPTime) {
		t.Fatalf("%s: %d packets received in about 3 s of audio: %+v", who, end.Stats.PacketsReceived, end.Stats)
	}
}

func TestICEPaths(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "test-secret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	servers, err := srv.Servers("alpha")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name           string
		caller, callee ICEOptions
		path           ice.Path
		withICE        bool
	}{
		{"host candidates on loopback", ICEOptions{}, ICEOptions{}, ice.PathHost, true},
		{"caller forces the relay", ICEOptions{Servers: servers, RelayOnly: true}, ICEOptions{}, ice.PathRelay, true},
		{"callee forces the relay", ICEOptions{}, ICEOptions{Servers: servers, RelayOnly: true}, ice.PathRelay, true},
		{"callee without ICE", ICEOptions{}, ICEOptions{Disabled: true}, ice.PathHost, false},
		{"caller without ICE", ICEOptions{Disabled: true}, ICEOptions{}, ice.PathHost, false},
		// A bad server URL leaves ICE out of the call rather than the call.
		{"caller's ICE unusable", ICEOptions{Servers: ice.Servers{URLs: []string{"http://x"}}}, ICEOptions{}, ice.PathHost, false},
		{"callee's ICE unusable", ICEOptions{}, ICEOptions{Servers: ice.Servers{URLs: []string{"http://x"}}}, ice.PathHost, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := srv.Allocations()
			p, rec := toneCall(t, CallOptions{ICE: tt.caller}, CallOptions{ICE: tt.callee})
			checkPath(t, "caller", p.callerEvents, tt.path, tt.withICE)
			checkPath(t, "callee", p.calleeEv, tt.path, tt.withICE)
			checkTone(t, rec)
			if tt.path == ice.PathRelay && srv.Allocations() == before {
				t.Fatal("relay path without a TURN allocation")
			}
		})
	}
}

// A description without ICE from the peer keeps our offer's c=/m= address
// the one media goes to: the offer's default candidate is a host address.
func TestICEOfferDefaultIsHostCandidate(t *testing.T) {
	ua, err := NewUA(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	c, err := newCall(ua, CallOptions{Cache: cacheAt(t, t.TempDir())}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer c.conn.Close()
	if err := c.offerICE(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, err := c.local.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseMedia(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.ICE == nil || m.ICEMismatch || len(m.ICE.Candidates) == 0 {
		t.Fatalf("offer without usable ICE:\n%s", b)
	}
	if m.Addr.String() != "127.0.0.1" || m.Port != int(c.iceDefault.Port()) {
		t.Fatalf("default %v:%d, want %v", m.Addr, m.Port, c.iceDefault)
	}
}

func TestICERelayUnavailable(t *testing.T) {
	dir := t.TempDir()
	a, err := NewUA(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewUA(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// No TURN server: the call fails before anything is sent.
	_, err = a.Dial(ctx, b.URI(), CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a")), ICE: ICEOptions{RelayOnly: true}})
	if !errors.Is(err, ErrRelayUnavailable) {
		t.Fatalf("err = %v, want ErrRelayUnavailable", err)
	}
}

// A caller that must use the relay cannot call a peer without ICE: the call
// ends with the reason instead of sending media elsewhere.
func TestICERelayOnlyPeerWithoutICE(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "s")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	servers, _ := srv.Servers("alpha")
	dir := t.TempDir()
	a, err := NewUA(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewUA(Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	go func() {
		c, err := b.Accept(ctx, CallOptions{Cache: cacheAt(t, filepath.Join(dir, "b")), ICE: ICEOptions{Disabled: true}})
		if err == nil {
			<-c.Done()
		}
	}()
	_, err = a.Dial(ctx, b.URI(), CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a")), ICE: ICEOptions{Servers: servers, RelayOnly: true}})
	if !errors.Is(err, ErrRelayUnavailable) {
		t.Fatalf("err = %v, want ErrRelayUnavailable", err)
	}
}

// TestICEPathChangeKeepsZRTP moves a call from its host pair to the relay
// in the middle: both sides report the change, no ZRTP packet is sent or
// received after it (the keys stay), and the audio goes on over the new
// pair.
func TestICEPathChangeKeepsZRTP(t *testing.T) {
	srv, err := iceturn.Start("127.0.0.1:0", "s")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	servers, _ := srv.Servers("alpha")
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec.wav")
	p := dialPair(t, "udp",
		CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a")), ICE: ICEOptions{Servers: servers},
			Play: &wav.Audio{SampleRate: 16000, Samples: dsp.Sine(16000*8, 16000, 440, 0.5)}},
		CallOptions{Cache: cacheAt(t, filepath.Join(dir, "b")), Record: rec})
	defer p.caller.Hangup(context.Background())
	sa, sb := waitSecure(t, p.callerEvents), waitSecure(t, p.calleeEv)
	if sa.SAS != sb.SAS {
		t.Fatal("SAS differ")
	}
	if e := p.callerEvents.has(EventPath); e == nil || e.Path != string(ice.PathHost) {
		t.Fatalf("first path %+v, want host", e)
	}
	zrtpA, zrtpB := zrtpDone(t, p)
	if err := p.caller.conn.(*iceTransport).agent.SwitchPath(ice.PathRelay); err != nil {
		t.Fatal(err)
	}
	relayed := func(r *recorder) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.events {
			if e.Type == EventPath && e.Path == string(ice.PathRelay) && strings.Contains(e.Reason, "changed from host") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(10 * time.Second)
	for !relayed(p.callerEvents) || !relayed(p.calleeEv) {
		if time.Now().After(deadline) {
			t.Fatalf("no change to relay: caller %+v callee %+v", p.callerEvents.events, p.calleeEv.events)
		}
		time.Sleep(50 * time.Millisecond)
	}
	switched := p.callee.Stats()
	time.Sleep(2 * time.Second)
	after, afterA := p.callee.Stats(), p.caller.Stats()
	if got := after.PacketsReceived - switched.PacketsReceived; got < uint64(1400*time.Millisecond/DefaultPTime) {
		t.Fatalf("%d packets received in the 2 s after the change (callee %+v at the change, %+v after; caller %+v)", got, switched, after, afterA)
	}
	if after.AuthFailures != 0 {
		t.Fatalf("%d SRTP authentication failures", after.AuthFailures)
	}
	if afterA.ZRTPSent != zrtpA.ZRTPSent || after.ZRTPSent != zrtpB.ZRTPSent || after.ZRTPReceived != zrtpB.ZRTPReceived {
		t.Fatalf("ZRTP ran again: caller sent %d then %d, callee sent %d then %d, received %d then %d",
			zrtpA.ZRTPSent, afterA.ZRTPSent, zrtpB.ZRTPSent, after.ZRTPSent, zrtpB.ZRTPReceived, after.ZRTPReceived)
	}
	n := 0
	p.calleeEv.mu.Lock()
	for _, e := range p.calleeEv.events {
		if e.Type == EventSecure {
			n++
		}
	}
	p.calleeEv.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d secure events", n)
	}
	if err := p.caller.Hangup(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-p.callee.Done()
	if e := p.calleeEv.has(EventEnded); e == nil || e.Stats.Path != string(ice.PathRelay) {
		t.Fatalf("ended %+v", e)
	}
	checkTone(t, rec)
}

// zrtpDone waits until the ZRTP exchange is over on both sides and
// returns their statistics then. Each side sends SRTP only once its part
// is done (the initiator after Conf2ACK, RFC 6189 §4.6), so audio both
// ways means no side has a ZRTP message of its own left to send; the
// counters must then also hold still, for a Conf2ACK answering a Confirm2
// retransmitted before it may still be on its way.
func zrtpDone(t *testing.T, p pair) (caller, callee Stats) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	a, b := p.caller.Stats(), p.callee.Stats()
	for {
		time.Sleep(300 * time.Millisecond)
		a2, b2 := p.caller.Stats(), p.callee.Stats()
		if a2.PacketsReceived > 0 && b2.PacketsReceived > 0 &&
			a2.ZRTPSent == a.ZRTPSent && a2.ZRTPReceived == a.ZRTPReceived && b2.ZRTPSent == b.ZRTPSent && b2.ZRTPReceived == b.ZRTPReceived {
			return a2, b2
		}
		if time.Now().After(deadline) {
			t.Fatalf("ZRTP not settled with audio both ways after 20 s: caller %+v, callee %+v", a2, b2)
		}
		a, b = a2, b2
	}
}

// A peer that vanishes without a BYE (its sockets closed) is noticed by
// the keepalive checks and alerted.
func TestICEPathLostAlert(t *testing.T) {
	dir := t.TempDir()
	p := dialPair(t, "udp", CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a"))}, CallOptions{Cache: cacheAt(t, filepath.Join(dir, "b"))})
	defer p.caller.Hangup(context.Background())
	waitSecure(t, p.callerEvents)
	waitSecure(t, p.calleeEv)
	p.callee.conn.Close() // the callee's ICE agent and its sockets, no BYE
	deadline := time.Now().Add(15 * time.Second)
	for {
		if e := p.callerEvents.has(EventAlert); e != nil && strings.Contains(e.Reason, "stopped answering") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert: %+v", p.callerEvents.events)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
