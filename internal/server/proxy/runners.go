package proxy

import "time"

// runners runs functions on goroutines that stay a while after their run
// for the next one, instead of a new goroutine per run. A delivery run
// reads the store and writes TLS records, whose deep call stacks (SQLite
// compiled to Go, AES-GCM) grow a new goroutine's stack by copying it
// several times: 7% of the relay's CPU in BenchmarkRelayMessage before.
// Runs never wait for a runner: with none idle, a new one starts, so a
// slow device never holds up another's delivery.
type runners struct {
	idle chan func() // unbuffered: a send succeeds only to an idle runner
	stay time.Duration
}

func newRunners(stay time.Duration) *runners {
	return &runners{idle: make(chan func()), stay: stay}
}

// runnerStay is how long an idle runner waits for another run.
const runnerStay = 10 * time.Second

func (r *runners) run(f func()) {
	select {
	case r.idle <- f:
	default:
		go r.loop(f)
	}
}

func (r *runners) loop(f func()) {
	t := time.NewTimer(r.stay)
	defer t.Stop()
	for {
		f()
		t.Reset(r.stay)
		select {
		case f = <-r.idle:
		case <-t.C:
			return
		}
	}
}
