// Package throttle decides how long a client must wait before its next
// password attempt, like a bank card PIN: a few attempts are free, then the
// wait doubles with each failure, then (where a policy asks for it) every
// attempt needs a human check, then the subject is locked until an operator
// lifts the lock.
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
	// HumanAfter is the number of failures after which every further
	// attempt must carry a solved human check (0: never).
	HumanAfter int
}

// DeviceDefault guards the unlock of one device's profile.
var DeviceDefault = Policy{Free: 3, BaseDelay: 2 * time.Second, MaxDelay: 10 * time.Minute, LockAfter: 10}

// AccountDefault guards the unlocks of all of an account's devices together,
// so an attacker who stole several devices cannot multiply attempts.
var AccountDefault = Policy{Free: 5, BaseDelay: 2 * time.Second, MaxDelay: 10 * time.Minute, LockAfter: 20}

// LoginDefault guards new-device logins, which anyone who knows the account
// name can start: it is counted apart from the devices' unlocks, so a
// stranger's guesses never lock out devices that exist, and after the free
// attempts each guess costs the guesser a proof of work.
var LoginDefault = Policy{Free: 3, BaseDelay: 2 * time.Second, MaxDelay: 10 * time.Minute, LockAfter: 20, HumanAfter: 3}

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
	Human      bool          // the attempt must carry a solved human check
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
	// Last may be later than now: the caller read its clock before it
	// waited for the counter, and a concurrent attempt (another device of
	// the account, or another node whose clock runs ahead) stamped it
	// meanwhile. That must not make a free attempt wait, nor a delayed one
	// wait longer than the policy's delay.
	if d := p.Delay(s.Failures); d > 0 {
		if wait := min(s.Last.Add(d).Sub(now), d); wait > 0 {
			v.RetryAfter = wait
		}
	}
	v.Human = p.HumanAfter > 0 && s.Failures >= p.HumanAfter
	return v
}

// After is the verdict once the attempt being judged is counted: what the
// client is told about its remaining attempts.
func (p Policy) After(s State, now time.Time) Verdict {
	return p.Check(State{Failures: s.Failures + 1, Last: now}, now)
}

// Combine gives the stricter of two verdicts.
func Combine(a, b Verdict) Verdict {
	return Verdict{
		Locked:     a.Locked || b.Locked,
		RetryAfter: max(a.RetryAfter, b.RetryAfter),
		Remaining:  min(a.Remaining, b.Remaining),
		FreeLeft:   min(a.FreeLeft, b.FreeLeft),
		Human:      a.Human || b.Human,
	}
}
