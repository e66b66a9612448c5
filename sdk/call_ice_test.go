package sdk_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/sdk"
)

// TestCallWithoutClusterRelay: the test node runs no relay, so a call by
// address falls back to host candidates, says so once on each side, and
// still connects; a call that must be relayed fails with
// ErrRelayUnavailable before anything rings. (With a relay, the offered
// srflx and relay candidates are checked end to end in internal/e2e
// TestCallByAddressDefaultICE.)
func TestCallWithoutClusterRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	sierra, tango := enrolled("calleronly@example.org", "laptop"), enrolled("calleeonly@example.org", "phone")
	defer sierra.Close()
	defer tango.Close()
	for _, c := range []struct {
		d    *sdk.Device
		whom string
	}{{sierra, "calleeonly@example.org"}, {tango, "calleronly@example.org"}} {
		if _, err := c.d.AddContact(ctx, c.whom); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	warnings := map[string][]string{}
	paths := map[string]string{}
	events := func(who string, listening chan struct{}) func(sdk.CallEvent) {
		return func(e sdk.CallEvent) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Type {
			case sdk.CallWarning:
				warnings[who] = append(warnings[who], e.Reason)
			case sdk.CallPath:
				paths[who] = e.Path
			case sdk.CallListening:
				close(listening)
			}
		}
	}

	// --relay cannot work without a relay: refused before the INVITE.
	_, err := sierra.Call(ctx, "calleeonly@example.org", sdk.CallOptions{Relay: true})
	if !errors.Is(err, sdk.ErrRelayUnavailable) || sdk.CallCause(err) != "relay_unavailable" {
		t.Fatalf("relayed call without a relay: %v (cause %q), want ErrRelayUnavailable", err, sdk.CallCause(err))
	}

	listening := make(chan struct{})
	answered := make(chan *sdk.Call, 1)
	go func() {
		c, err := tango.Answer(ctx, sdk.CallOptions{OnEvent: events("callee", listening)})
		if err != nil {
			t.Error(err)
			close(answered)
			return
		}
		answered <- c
	}()
	select {
	case <-listening:
	case <-ctx.Done():
		t.Fatal("the callee never listened")
	}
	call, err := sierra.Call(ctx, "calleeonly@example.org", sdk.CallOptions{OnEvent: events("caller", make(chan struct{}))})
	if err != nil {
		t.Fatal(err)
	}
	in := <-answered
	if in == nil {
		t.FailNow()
	}
	if err := call.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	if err := in.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, who := range []string{"caller", "callee"} {
		// Another warning may come beside it (Opus missing on a machine
		// without libopus); exactly one must be about the relay.
		n := 0
		for _, w := range warnings[who] {
			if strings.Contains(w, "relay") {
				n++
				if !strings.Contains(w, "no STUN/TURN relay") {
					t.Errorf("%s warning %q, want it to say the cluster has no relay", who, w)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s warnings %q, want one saying the cluster has no relay", who, warnings[who])
		}
		if paths[who] != "host" {
			t.Errorf("%s path %q, want host", who, paths[who])
		}
	}
}

// TestUseClusterRelayOverrides: servers given by the caller, or ICE left
// out, are kept as they are, without a warning; only the default asks
// the cluster.
func TestUseClusterRelayOverrides(t *testing.T) {
	d := enrolled("overrides@example.org", "laptop")
	defer d.Close()
	given := sdk.ICEServers{URLs: []string{"stun:192.0.2.1:3478"}}
	tests := []struct {
		name    string
		o       sdk.CallOptions
		want    []string
		warns   int
		wantErr error
	}{
		{"servers given", sdk.CallOptions{ICEServers: given}, given.URLs, 0, nil},
		{"servers given, relay only", sdk.CallOptions{ICEServers: given, Relay: true}, given.URLs, 0, nil},
		{"no ICE", sdk.CallOptions{NoICE: true}, nil, 0, nil},
		{"default, cluster without relay", sdk.CallOptions{}, nil, 1, nil},
		{"relay only, cluster without relay", sdk.CallOptions{Relay: true}, nil, 0, sdk.ErrRelayUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warns := 0
			o := tt.o
			o.OnEvent = func(e sdk.CallEvent) {
				if e.Type == sdk.CallWarning {
					warns++
				}
			}
			err := d.UseClusterRelay(context.Background(), &o)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if strings.Join(o.ICEServers.URLs, " ") != strings.Join(tt.want, " ") || warns != tt.warns {
				t.Errorf("servers %v and %d warnings, want %v and %d", o.ICEServers.URLs, warns, tt.want, tt.warns)
			}
		})
	}
}
