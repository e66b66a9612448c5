package relay

import (
	"sync"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	const s = int64(time.Second)
	b := newBucket(10000, 10000) // 10 kB/s, 10 kB burst
	now := 5 * s
	for i := range 10 {
		if !b.allow(now, 1000) {
			t.Fatalf("datagram %d of the burst refused", i)
		}
	}
	if b.allow(now, 1000) {
		t.Fatal("datagram beyond the burst allowed")
	}
	if b.allow(now, 1) {
		t.Fatal("a byte allowed from an empty bucket")
	}
	now += s / 10 // 1000 bytes refilled
	if !b.allow(now, 1000) || b.allow(now, 100) {
		t.Fatal("refill of 100 ms not exactly 1000 bytes")
	}
	now += 10 * s // full again, not fuller
	for i := range 10 {
		if !b.allow(now, 1000) {
			t.Fatalf("datagram %d after a long pause refused", i)
		}
	}
	if b.allow(now, 1000) {
		t.Fatal("bucket overfilled by a long pause")
	}
	// A refused datagram takes nothing; one given back is returned.
	now += s / 10
	if b.allow(now, 2000) {
		t.Fatal("2000 bytes allowed with 1000 in the bucket")
	}
	if !b.allow(now, 1000) {
		t.Fatal("refused datagram took tokens")
	}
	b.giveBack(1000)
	if !b.allow(now, 1000) {
		t.Fatal("tokens given back not usable")
	}
}

// TestBucketConcurrent: goroutines taking at once never get more than the
// burst between them.
func TestBucketConcurrent(t *testing.T) {
	b := newBucket(1000, 100000)
	now := int64(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for range 10000 {
				if b.allow(now, 10) {
					n++
				}
			}
			mu.Lock()
			got += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got != 10000 {
		t.Fatalf("%d datagrams of 10 bytes out of a 100000-byte burst", got)
	}
}
