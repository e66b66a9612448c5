package relay

import (
	"testing"
	"time"
)

// BenchmarkRelayChannelData relays 100-byte datagrams between two UDP
// clients' allocations (the path of a relayed call where both ends use the
// relay), in windows of 32 so that the socket buffers never overflow. The
// clients are pion/turn's, in the same process: the figure includes their
// cost; profile it (-cpuprofile) to see the relay's share.
func BenchmarkRelayChannelData(b *testing.B) {
	t := &testing.T{}
	f := start(t, func(c *Config) { c.MaxAllocationsPerUser = 0 })
	defer f.srv.Close()
	ra, rb := relayedPair(t, f)
	msg := make([]byte, 100)
	buf := make([]byte, 1600)
	const window = 32
	lost := 0
	b.ResetTimer()
	for i := 0; i < b.N; i += window {
		n := min(window, b.N-i)
		for range n {
			if _, err := ra.WriteTo(msg, rb.LocalAddr()); err != nil {
				b.Fatal(err)
			}
		}
		for j := range n {
			rb.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := rb.ReadFrom(buf); err != nil {
				lost += n - j
				break
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(lost)/float64(b.N), "lost/op")
}
