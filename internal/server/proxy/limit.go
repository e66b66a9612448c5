package proxy

import (
	"sync"
	"time"
)

// limiter is a token bucket per account.
type limiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	b     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), b: map[string]*bucket{}}
}

// take spends one token, or returns how long until one is available.
func (l *limiter) take(key string, now time.Time) time.Duration {
	return l.takeAt(key, now, l.rate, l.burst)
}

// takeAt is take with this key's rate and burst, which may change between
// calls (an operator's policy): the bucket refills at the new rate and
// holds no more than the new burst.
func (l *limiter) takeAt(key string, now time.Time, rate, burst float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.b[key]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		l.b[key] = b
	}
	// A caller that read its clock before one that took the lock first
	// is not charged for the difference, and last never moves back.
	if now.After(b.last) {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second))
}
