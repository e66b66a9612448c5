// Package throttle decides how long a client must wait before its next
// password attempt, like a bank card PIN: a few attempts are free, then the
// wait doubles with each failure, then the subject is locked until an
// operator lifts the lock.
package throttle

import (
	"time"
)

// Policy is one rule set; devices and accounts each have their own.
type Policy struct {
	Free      int           // failures allowed without delay
	BaseDelay time.Duration // delay after the first failure beyond Free
	MaxDelay  time.Duration // cap of the doubling delay
	LockAfter int           // failures after which the subject is locked
}

// DeviceDefault guards the unlock of one device's profile.
var DeviceDefault = Policy{Free: 3, BaseDelay: 2 * time.Second, MaxDelay: 10 * time.Minute, LockAfter: 10}

// AccountDefault guards an account across all its devices and new-device
// logins, so an attacker cannot multiply attempts by enrolling devices.
var AccountDefault = Policy{Free: 5, BaseDelay: 2 * time.Second, MaxDelay: 10 * time.Minute, LockAfter: 20}

// State is what the store keeps per subject.
type State struct {
	Failures int       // attempts not followed by a confirmed success
	Last     time.Time // time of the latest attempt
}

// Verdict is the answer to "may this subject try now?".
type Verdict struct {
	Locked     bool
	RetryAfter time.Duration // zero when an attempt is allowed now
	Remaining  int           // attempts left before the lock
	FreeLeft   int           // attempts left before delays start
}

// Allowed reports whether an attempt may start now.
func (v Verdict) Allowed() bool { return !v.Locked && v.RetryAfter <= 0 }

// Delay is the wait required after n unconfirmed attempts.
func (p Policy) Delay(n int) time.Duration {
	if n < p.Free {
		return 0
	}
	d := p.BaseDelay
	for i := p.Free; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, p.MaxDelay)
}

// Check judges an attempt at now.
func (p Policy) Check(s State, now time.Time) Verdict {
	v := Verdict{Remaining: max(p.LockAfter-s.Failures, 0), FreeLeft: max(p.Free-s.Failures, 0)}
	if s.Failures >= p.LockAfter {
		v.Locked = true
		return v
	}
	if wait := s.Last.Add(p.Delay(s.Failures)).Sub(now); wait > 0 {
		v.RetryAfter = wait
	}
	return v
}

// Combine gives the stricter of two verdicts.
func Combine(a, b Verdict) Verdict {
	return Verdict{
		Locked:     a.Locked || b.Locked,
		RetryAfter: max(a.RetryAfter, b.RetryAfter),
		Remaining:  min(a.Remaining, b.Remaining),
		FreeLeft:   min(a.FreeLeft, b.FreeLeft),
	}
}
