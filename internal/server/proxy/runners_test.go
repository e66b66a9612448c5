package proxy

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := bytes.Fields(b)
	return string(f[1])
}

// TestRunners: a run never waits for another (a blocked run does not hold
// up the next), an idle runner takes the next run on the same goroutine,
// and leaves once idle for its stay.
func TestRunners(t *testing.T) {
	r := newRunners(200 * time.Millisecond)
	block, done := make(chan struct{}), make(chan struct{})
	r.run(func() { <-block })
	r.run(func() { close(done) })
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a run waited for a blocked one")
	}
	close(block)

	ids := make(chan string, 1)
	r.run(func() { ids <- goroutineID() })
	first := <-ids
	reused := false
	for i := 0; i < 50 && !reused; i++ {
		time.Sleep(5 * time.Millisecond) // the runner is idle again
		r.run(func() { ids <- goroutineID() })
		reused = <-ids == first
	}
	if !reused {
		t.Fatal("an idle runner did not take the next run")
	}

	before := runtime.NumGoroutine()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() >= before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("idle runners stayed 10 s past their 200 ms stay: %d goroutines, %d before", runtime.NumGoroutine(), before)
		}
	}
}
