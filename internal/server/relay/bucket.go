package relay

import (
	"sync/atomic"
	"time"
)

// bucket is a token bucket of rate bytes per second holding at most burst
// bytes, starting full, as the generic cell rate algorithm (GCRA, ITU-T
// Recommendation I.371, its virtual scheduling form): it keeps only the
// theoretical time at which the bucket would be full again and updates it
// with one compare-and-swap, so checking a datagram on the relay's data
// path takes no lock. A datagram that does not fit takes nothing.
type bucket struct {
	perByte   float64      // nanoseconds of rate per byte
	tolerance int64        // nanoseconds: burst bytes at the rate
	tat       atomic.Int64 // theoretical arrival time, nanoseconds since epoch
}

// epoch is the bucket clock's origin; time.Since reads the monotonic clock.
var epoch = time.Now()

func newBucket(rate, burst int) *bucket {
	per := 1e9 / float64(rate)
	return &bucket{perByte: per, tolerance: int64(per * float64(burst))}
}

// allow takes n bytes at now (nanoseconds since epoch) if they fit.
func (b *bucket) allow(now int64, n int) bool {
	cost := int64(b.perByte * float64(n))
	for {
		tat := b.tat.Load()
		next := max(tat, now) + cost
		if next-now > b.tolerance {
			return false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}

// giveBack returns n bytes taken at now: a datagram the second bucket
// refused does not use up the first.
func (b *bucket) giveBack(n int) {
	b.tat.Add(-int64(b.perByte * float64(n)))
}
