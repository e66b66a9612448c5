// Command zrtp-bench measures the ZRTP handshake of direct calls between
// two in-process user agents on loopback: the time from the first Hello to
// SRTP keys on each side, and the ZRTP packets exchanged, per key
// agreement. It prints a table.
//
//	go run ./bench/zrtp [-n 20]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/phonex/phonex/internal/sipua"
	"github.com/phonex/phonex/internal/zrtp"
)

func main() {
	n := flag.Int("n", 20, "calls per key agreement")
	flag.Parse()
	if err := run(*n); err != nil {
		fmt.Fprintln(os.Stderr, "zrtp-bench:", err)
		os.Exit(1)
	}
}

type sample struct {
	initiator, responder time.Duration
	packets              uint64
}

func run(n int) error {
	dir, err := os.MkdirTemp("", "zrtp-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Printf("%-6s %6s %12s %12s %12s %10s\n", "KA", "calls", "init p50 ms", "init p90 ms", "resp p50 ms", "ZRTP pkts")
	for _, ka := range []zrtp.Algo{zrtp.DH3k, zrtp.X255, zrtp.EC25, zrtp.X2K7} {
		var samples []sample
		for i := range n {
			// Fresh caches: every call is a first call (no retained secret).
			s, err := oneCall(filepath.Join(dir, fmt.Sprintf("%s-%d", ka, i)), ka)
			if err != nil {
				return fmt.Errorf("%s: %w", ka, err)
			}
			samples = append(samples, s)
		}
		pick := func(f func(sample) time.Duration, q float64) float64 {
			v := make([]time.Duration, len(samples))
			for i, s := range samples {
				v[i] = f(s)
			}
			slices.Sort(v)
			return float64(v[int(q*float64(len(v)-1))].Microseconds()) / 1000
		}
		var pk uint64
		for _, s := range samples {
			pk += s.packets
		}
		fmt.Printf("%-6s %6d %12.2f %12.2f %12.2f %10.1f\n", ka, n,
			pick(func(s sample) time.Duration { return s.initiator }, 0.5),
			pick(func(s sample) time.Duration { return s.initiator }, 0.9),
			pick(func(s sample) time.Duration { return s.responder }, 0.5),
			float64(pk)/float64(n))
	}
	fmt.Println("\nA DH-mode exchange is 4 round trips after the Hellos cross (RFC 6189 §4):")
	fmt.Println("Hello/HelloACK, Commit/DHPart1, DHPart2/Confirm1, Confirm2/Conf2ACK: 10 packets without loss, plus any Hello retransmitted before the peer answered.")
	return nil
}

func oneCall(dir string, ka zrtp.Algo) (sample, error) {
	var s sample
	ca, err := sipua.OpenFileStore(filepath.Join(dir, "a"))
	if err != nil {
		return s, err
	}
	cb, err := sipua.OpenFileStore(filepath.Join(dir, "b"))
	if err != nil {
		return s, err
	}
	a, err := sipua.NewUA(sipua.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		return s, err
	}
	defer a.Close()
	b, err := sipua.NewUA(sipua.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		return s, err
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	kas := []zrtp.Algo{ka, zrtp.Mult}
	secA, secB := make(chan *sipua.SecureInfo, 1), make(chan *sipua.SecureInfo, 1)
	on := func(ch chan *sipua.SecureInfo) func(sipua.Event) {
		return func(e sipua.Event) {
			if e.Type == sipua.EventSecure {
				ch <- e.Secure
			}
		}
	}
	accepted := make(chan *sipua.Call, 1)
	go func() {
		c, err := b.Accept(ctx, sipua.CallOptions{Cache: cb, KeyAgreements: kas, OnEvent: on(secB)})
		if err == nil {
			accepted <- c
		}
	}()
	call, err := a.Dial(ctx, b.URI(), sipua.CallOptions{Cache: ca, KeyAgreements: kas, OnEvent: on(secA)})
	if err != nil {
		return s, err
	}
	var infos []*sipua.SecureInfo
	for range 2 {
		select {
		case i := <-secA:
			infos = append(infos, i)
		case i := <-secB:
			infos = append(infos, i)
		case <-ctx.Done():
			return s, fmt.Errorf("no keys: %w", ctx.Err())
		}
	}
	// Let Confirm2/Conf2ACK finish before counting packets.
	time.Sleep(100 * time.Millisecond)
	callee := <-accepted
	for _, i := range infos {
		if i.KeyAgreement != ka.String() {
			return s, fmt.Errorf("negotiated %s", i.KeyAgreement)
		}
		if i.Initiator {
			s.initiator = i.Handshake
		} else {
			s.responder = i.Handshake
		}
	}
	s.packets = call.Stats().ZRTPSent + call.Stats().ZRTPReceived
	_ = call.Hangup(context.Background())
	<-callee.Done()
	return s, nil
}
