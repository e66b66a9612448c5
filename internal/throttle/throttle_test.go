package throttle

import (
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	p := Policy{Free: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second, LockAfter: 8}
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		failures int
		after    time.Duration
		allowed  bool
		locked   bool
		wait     time.Duration
	}{
		{0, 0, true, false, 0},
		{2, 0, true, false, 0},
		{3, 0, false, false, time.Second},
		{3, time.Second, true, false, 0},
		{4, 500 * time.Millisecond, false, false, 1500 * time.Millisecond},
		{5, 0, false, false, 4 * time.Second},
		{6, 0, false, false, 8 * time.Second},
		{7, 0, false, false, 8 * time.Second},
		{8, time.Hour, false, true, 0},
		{50, 0, false, true, 0},
	} {
		v := p.Check(State{Failures: tc.failures, Last: t0}, t0.Add(tc.after))
		if v.Allowed() != tc.allowed || v.Locked != tc.locked || v.RetryAfter != tc.wait {
			t.Errorf("failures=%d after=%v: %+v", tc.failures, tc.after, v)
		}
	}
}

func TestCombine(t *testing.T) {
	v := Combine(Verdict{RetryAfter: time.Second, Remaining: 5, FreeLeft: 1}, Verdict{Locked: true, Remaining: 0})
	if !v.Locked || v.Allowed() || v.RetryAfter != time.Second || v.Remaining != 0 {
		t.Fatalf("%+v", v)
	}
}
