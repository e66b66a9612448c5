package sipua

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/wav"
	"github.com/phonex/phonex/internal/zrtp"
)

// recorder collects a call's events.
type recorder struct {
	mu     sync.Mutex
	events []Event
	secure chan *SecureInfo
}

func newRecorder() *recorder { return &recorder{secure: make(chan *SecureInfo, 1)} }

func (r *recorder) on(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	if e.Type == EventSecure {
		r.secure <- e.Secure
	}
}

func (r *recorder) has(t EventType) *Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.events {
		if r.events[i].Type == t {
			return &r.events[i]
		}
	}
	return nil
}

func waitSecure(t *testing.T, r *recorder) *SecureInfo {
	t.Helper()
	select {
	case s := <-r.secure:
		return s
	case <-time.After(15 * time.Second):
		t.Fatal("no secure event")
		return nil
	}
}

type pair struct {
	caller, callee         *Call
	callerEvents, calleeEv *recorder
	callerUA, calleeUA     *UA
}

// dialPair places a call between two user agents on loopback.
func dialPair(t *testing.T, transport string, callerOpts, calleeOpts CallOptions) pair {
	t.Helper()
	a, err := NewUA(Config{Listen: "127.0.0.1:0", Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := NewUA(Config{Listen: "127.0.0.1:0", Transport: transport})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	p := pair{callerEvents: newRecorder(), calleeEv: newRecorder(), callerUA: a, calleeUA: b}
	callerOpts.OnEvent, calleeOpts.OnEvent = p.callerEvents.on, p.calleeEv.on
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	accepted := make(chan error, 1)
	go func() {
		var err error
		p.callee, err = b.Accept(ctx, calleeOpts)
		accepted <- err
	}()
	p.caller, err = a.Dial(ctx, b.URI(), callerOpts)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-accepted; err != nil {
		t.Fatal(err)
	}
	return p
}

func cacheAt(t *testing.T, dir string) *FileStore {
	t.Helper()
	c, err := OpenFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCallToneAndSAS(t *testing.T) {
	for _, tt := range []struct {
		name      string
		transport string
		noOpus    bool
		codec     string
		tags      []zrtp.Algo // both ends' SRTP tag preferences
		tag       zrtp.Algo   // agreed
		bitrate   int         // Opus sent, from the budget for the tag
	}{
		{"opus over UDP", "udp", false, "opus/48000/2", nil, zrtp.HS32, DefaultOpusBitrate},
		// A peer that prefers the longer tag gets it, and the Opus rate
		// leaves room for its bytes.
		{"opus over UDP with HS80", "udp", false, "opus/48000/2", []zrtp.Algo{zrtp.HS80}, zrtp.HS80, BudgetBitrate(DefaultPTime, zrtp.HS80)},
		{"PCMU over TCP", "tcp", true, "PCMU/8000", nil, zrtp.HS32, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tone := &wav.Audio{SampleRate: 16000, Samples: dsp.Sine(16000*3, 16000, 440, 0.5)}
			rec := filepath.Join(dir, "rec.wav")
			p := dialPair(t, tt.transport,
				CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a")), Play: tone, NoOpus: tt.noOpus, AuthTags: tt.tags},
				CallOptions{Cache: cacheAt(t, filepath.Join(dir, "b")), Record: rec, AuthTags: tt.tags})
			sa, sb := waitSecure(t, p.callerEvents), waitSecure(t, p.calleeEv)
			if sa.SAS == "" || sa.SAS != sb.SAS || sa.Cipher != sb.Cipher || sa.Trust != TrustUnverified || sa.AuthTag != tt.tag.String() || sb.AuthTag != sa.AuthTag {
				t.Fatalf("caller %+v callee %+v", sa, sb)
			}
			if c := p.callerEvents.has(EventConnected); c == nil || c.Codec != tt.codec {
				t.Fatalf("connected: %+v", c)
			}
			time.Sleep(3 * time.Second)
			if err := p.caller.Hangup(context.Background()); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p.callee.Done():
			case <-time.After(15 * time.Second):
				t.Fatal("callee did not see the BYE")
			}
			e := p.calleeEv.has(EventEnded)
			if e == nil || e.Reason != "remote hangup" || e.Stats.PacketsReceived < uint64(2*time.Second/DefaultPTime) {
				t.Fatalf("callee ended: %+v %+v", e, e.Stats)
			}
			// Receiver reports over SRTCP on the RTP port (a=rtcp-mux)
			// reach the sender, which sees no loss on loopback.
			ce := p.callerEvents.has(EventEnded)
			if ce == nil {
				t.Fatal("caller has no ended event")
			}
			cs, ss := ce.Stats, e.Stats
			t.Logf("caller %+v", *cs)
			t.Logf("callee %+v", *ss)
			if ss.RTCPSent == 0 || cs.RTCPReceived == 0 || cs.PeerLossPercent != 0 || ss.LossPercent != 0 {
				t.Errorf("RTCP: callee sent %d, caller received %d, peer loss %.1f%%, loss %.1f%%",
					ss.RTCPSent, cs.RTCPReceived, cs.PeerLossPercent, ss.LossPercent)
			}
			if cs.Path != "host" || cs.Send.PTimeMS != int(DefaultPTime/time.Millisecond) || cs.DelayMS < cs.PlayoutDelayMS || cs.PlayoutDelayMS <= 0 || cs.SendIPKbps <= 0 ||
				(!tt.noOpus && (cs.Send.FEC || !cs.Send.Redundancy || !ss.Send.Redundancy || cs.Send.BitrateBPS != tt.bitrate || ss.Send.BitrateBPS != tt.bitrate || cs.Send.Bandwidth != "mediumband")) {
				t.Errorf("caller settings %+v, path %q, %.1f kbit/s", cs.Send, cs.Path, cs.SendIPKbps)
			}
			f, err := os.Open(rec)
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
		})
	}
}

func TestReinvite(t *testing.T) {
	dir := t.TempDir()
	p := dialPair(t, "udp",
		CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a")), NoOpus: true},
		CallOptions{Cache: cacheAt(t, filepath.Join(dir, "b"))})
	defer p.caller.Hangup(context.Background())
	waitSecure(t, p.callerEvents)
	waitSecure(t, p.calleeEv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Hold and resume keep ZRTP: accepted and reported.
	if err := p.callee.Hold(ctx, true); err != nil {
		t.Fatal(err)
	}
	if p.callerEvents.has(EventHold) == nil {
		t.Fatal("no hold event")
	}
	if err := p.callee.Hold(ctx, false); err != nil {
		t.Fatal(err)
	}
	if p.callerEvents.has(EventResume) == nil {
		t.Fatal("no resume event")
	}

	// A re-INVITE without zrtp-hash, or with SDES keys, is refused and
	// alerted; the call goes on.
	for _, tt := range []struct {
		name string
		edit func(*Media)
	}{
		{"plain RTP", func(m *Media) { m.ZRTPHash = "" }},
		{"RTP/SAVP without zrtp-hash", func(m *Media) { m.ZRTPHash, m.Proto = "", ProtoSAVP }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.callerEvents.mu.Lock()
			p.callerEvents.events = nil
			p.callerEvents.mu.Unlock()
			p.callee.sigMu.Lock()
			m := p.callee.local
			m.Version += 10
			p.callee.sigMu.Unlock()
			tt.edit(&m)
			res, err := p.callee.reinvite(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != 488 {
				t.Fatalf("re-INVITE without ZRTP answered %d", res.StatusCode)
			}
			if a := p.callerEvents.has(EventAlert); a == nil || !strings.Contains(a.Reason, "without ZRTP") {
				t.Fatalf("alert: %+v", a)
			}
		})
	}
	select {
	case <-p.caller.Done():
		t.Fatal("call ended")
	default:
	}
}

// TestCloseHangsUpCalls: closing an agent with a call up hangs the call
// up (the peer gets the BYE) and returns once it has ended, so nothing of
// the call plays, records or writes the ZRTP store afterwards.
func TestCloseHangsUpCalls(t *testing.T) {
	dir := t.TempDir()
	p := dialPair(t, "udp", CallOptions{Cache: cacheAt(t, filepath.Join(dir, "a"))}, CallOptions{Cache: cacheAt(t, filepath.Join(dir, "b"))})
	waitSecure(t, p.callerEvents)
	waitSecure(t, p.calleeEv)
	p.calleeUA.Close()
	select {
	case <-p.callee.Done():
	default:
		t.Fatal("Close returned with its call still up")
	}
	if e := p.calleeEv.has(EventEnded); e == nil || e.Reason != "local hangup" {
		t.Fatalf("callee's end: %+v", e)
	}
	select {
	case <-p.caller.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the peer did not get the BYE")
	}
}
