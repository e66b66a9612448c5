package presence

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/pidf"
)

// inbox records the NOTIFYs of one subscription.
type inbox struct {
	mu  sync.Mutex
	got []string // aggregate and Subscription-State
}

func (in *inbox) deliver(_ context.Context, body []byte, state string) error {
	d, err := pidf.Parse(body)
	if err != nil {
		return err
	}
	a := d.Aggregate()
	in.mu.Lock()
	in.got = append(in.got, fmt.Sprintf("%s %v %s", a.State, a.Devices, state))
	in.mu.Unlock()
	return nil
}

func (in *inbox) wait(t *testing.T, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		in.mu.Lock()
		if len(in.got) >= n {
			out := append([]string(nil), in.got...)
			in.mu.Unlock()
			return out
		}
		in.mu.Unlock()
	}
	t.Fatalf("timed out waiting for NOTIFY %d", n)
	return nil
}

func TestAccountOfTwoDevices(t *testing.T) {
	s := New(nil)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	in := &inbox{}
	s.Subscribe("bob@x", 7, "alice@x", time.Hour, Blocking(in.deliver))
	s.Connected("alice@x", "laptop", DeviceInfo{})
	s.Connected("alice@x", "phone", DeviceInfo{})
	if _, err := s.Publish("alice@x", "laptop", "", pidf.DND, "", true, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish("alice@x", "phone", "", pidf.Away, "", true, time.Hour); err != nil {
		t.Fatal(err)
	}
	s.CallStarted("alice@x", "laptop")
	s.CallEnded("alice@x", "laptop")
	s.Disconnected("alice@x", "phone")
	// The publication of the laptop expires: it shows online again.
	now = now.Add(2 * time.Hour)
	s.Sweep(now.Add(-time.Minute))
	// And the subscription expires after it.
	s.Sweep(now.Add(time.Hour))
	// NOTIFYs of one subscription are sent in order and a superseded one
	// may be skipped: the final one comes last.
	want := "online [laptop] terminated;reason=timeout"
	for n := 1; ; n++ {
		got := in.wait(t, n)
		if got[n-1] == want {
			break
		}
		if n > 9 {
			t.Fatalf("no final NOTIFY: %q", got)
		}
	}
	if subs, devs := s.Counts(); subs != 0 || devs != 1 {
		t.Fatalf("left %d subscriptions, %d devices", subs, devs)
	}
}

func TestAggregationSteps(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(s *Service)
		want string
	}{
		{"nothing", func(s *Service) {}, "offline []"},
		{"connected", func(s *Service) { s.Connected("a@x", "l", DeviceInfo{}) }, "online [l]"},
		{"most available", func(s *Service) {
			s.Connected("a@x", "l", DeviceInfo{})
			s.Connected("a@x", "p", DeviceInfo{})
			s.Publish("a@x", "l", "", pidf.DND, "", true, time.Hour)
			s.Publish("a@x", "p", "", pidf.Busy, "", true, time.Hour)
		}, "busy [l p]"},
		{"call wins", func(s *Service) {
			s.Connected("a@x", "l", DeviceInfo{})
			s.Connected("a@x", "p", DeviceInfo{})
			s.CallStarted("a@x", "p")
		}, "oncall [l p]"},
		{"invisible", func(s *Service) {
			s.Connected("a@x", "l", DeviceInfo{})
			s.Publish("a@x", "l", "", pidf.Invisible, "", true, time.Hour)
		}, "offline []"},
		{"invisible before connecting", func(s *Service) {
			s.Publish("a@x", "l", "", pidf.Invisible, "", true, time.Hour)
			s.Connected("a@x", "l", DeviceInfo{})
		}, "offline []"},
		{"gone", func(s *Service) {
			s.Connected("a@x", "l", DeviceInfo{})
			s.Disconnected("a@x", "l")
		}, "offline []"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(nil)
			tc.do(s)
			d, err := pidf.Parse(s.Fetch("b@x", "a@x"))
			if err != nil {
				t.Fatal(err)
			}
			a := d.Aggregate()
			if got := fmt.Sprintf("%s %v", a.State, a.Devices); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPublishETags(t *testing.T) {
	s := New(nil)
	tag, err := s.Publish("a@x", "l", "", pidf.Away, "", true, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Publish("a@x", "other", tag, "", "", false, time.Hour); err != ErrNoPublication {
		t.Fatalf("another device's tag: %v", err)
	}
	tag2, err := s.Publish("a@x", "l", tag, "", "", false, time.Hour)
	if err != nil || tag2 == tag {
		t.Fatalf("refresh: %q %v", tag2, err)
	}
	if _, err := s.Publish("a@x", "l", tag, "", "", false, time.Hour); err != ErrNoPublication {
		t.Fatalf("the replaced tag: %v", err)
	}
	if _, err := s.Publish("a@x", "l", "", "", "", false, time.Hour); err != ErrNoPublication {
		t.Fatalf("a refresh without tag: %v", err)
	}
	if _, err := s.Publish("a@x", "l", tag2, "", "", false, 0); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if subs, devs := s.Counts(); subs != 0 || devs != 0 || len(s.accounts) != 0 {
		t.Fatalf("left %d, %d, %d accounts", subs, devs, len(s.accounts))
	}
}

// TestEndWatching: both directions end, each with an offline document.
func TestEndWatching(t *testing.T) {
	s := New(nil)
	ab, ba := &inbox{}, &inbox{}
	s.Connected("a@x", "l", DeviceInfo{})
	s.Connected("b@x", "d", DeviceInfo{})
	s.Subscribe("a@x", 1, "b@x", time.Hour, Blocking(ab.deliver))
	s.Subscribe("b@x", 2, "a@x", time.Hour, Blocking(ba.deliver))
	ab.wait(t, 1)
	ba.wait(t, 1)
	s.EndWatching("a@x", "b@x")
	for _, in := range []*inbox{ab, ba} {
		if got := in.wait(t, 2); got[1] != "offline [] terminated;reason=rejected" {
			t.Fatalf("final: %q", got)
		}
	}
	if subs, _ := s.Counts(); subs != 0 {
		t.Fatalf("%d left", subs)
	}
}
