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

// TestLastAfterNow: two devices of one account unlock at once; the
// second read its clock before the first stamped the shared counter. Its
// attempt is free, and a delayed one waits no more than the delay.
func TestLastAfterNow(t *testing.T) {
	p := Policy{Free: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second, LockAfter: 8}
	now := time.Unix(1000, 0)
	later := now.Add(40 * time.Millisecond)
	for _, tc := range []struct {
		failures int
		wait     time.Duration
	}{
		{0, 0}, {1, 0}, {2, 0},
		{3, time.Second},
		{5, 4 * time.Second},
	} {
		if v := p.Check(State{Failures: tc.failures, Last: later}, now); v.RetryAfter != tc.wait {
			t.Errorf("failures=%d, last attempt stamped after now: wait %v, want %v", tc.failures, v.RetryAfter, tc.wait)
		}
	}
}

func TestCombine(t *testing.T) {
	v := Combine(Verdict{RetryAfter: time.Second, Remaining: 5, FreeLeft: 1}, Verdict{Locked: true, Remaining: 0})
	if !v.Locked || v.Allowed() || v.RetryAfter != time.Second || v.Remaining != 0 {
		t.Fatalf("%+v", v)
	}
}

func TestHumanCheckAndAfter(t *testing.T) {
	p := Policy{Free: 2, BaseDelay: time.Second, MaxDelay: 4 * time.Second, LockAfter: 5, HumanAfter: 2}
	t0 := time.Unix(1000, 0)
	for failures, want := range []bool{false, false, true, true, true} {
		if v := p.Check(State{Failures: failures, Last: t0}, t0.Add(time.Hour)); v.Human != want {
			t.Errorf("failures=%d: human=%v", failures, v.Human)
		}
	}
	if v := (Policy{Free: 2, BaseDelay: time.Second, MaxDelay: time.Second, LockAfter: 5}).Check(State{Failures: 4}, t0); v.Human {
		t.Error("a policy without a human check asked for one")
	}
	// After counts the attempt being judged.
	if v := p.After(State{Failures: 1, Last: t0}, t0); v.FreeLeft != 0 || v.Remaining != 3 || !v.Human {
		t.Errorf("after the second attempt: %+v", v)
	}
	if v := Combine(Verdict{Human: true}, Verdict{}); !v.Human {
		t.Error("Combine dropped the human check")
	}
}
