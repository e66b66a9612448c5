package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/phonex/phonex/internal/media/rtcp"
)

// UDPOption adds to SendUDP or ReceiveUDP.
type UDPOption func(*udpOptions)

type udpOptions struct {
	onPacket       func(n int)
	onReport       func(rtcp.Block)
	reportTo       net.Addr
	reportInterval time.Duration
}

// OnPacket has SendUDP call f with the size of each packet sent.
func OnPacket(f func(n int)) UDPOption { return func(o *udpOptions) { o.onPacket = f } }

// OnReport has SendUDP read the peer's SRTCP reports from its socket and
// call f with each block about our stream, from the sending goroutine
// (so f may call the Sender's Adapt).
func OnReport(f func(rtcp.Block)) UDPOption { return func(o *udpOptions) { o.onReport = f } }

// WithReports has ReceiveUDP send an SRTCP receiver report to addr every
// interval (RFC 3550 §6.2 asks for at least 5 s between reports in
// general; a two-party call may report more often as long as RTCP stays
// near 5 % of the session bandwidth, and one report a second is that).
func WithReports(addr net.Addr, interval time.Duration) UDPOption {
	return func(o *udpOptions) { o.reportTo, o.reportInterval = addr, interval }
}

// SendUDP sends the Sender's queued frames to addr, one per frame
// interval, until the queue is empty or ctx ends. Queue the whole source
// (Write, then Flush) before calling it to play a file into a call.
func SendUDP(ctx context.Context, conn net.PacketConn, addr net.Addr, s *Sender, opts ...UDPOption) error {
	var o udpOptions
	for _, f := range opts {
		f(&o)
	}
	reports := make(chan []byte, 16)
	if o.onReport != nil {
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			buf := make([]byte, 1500)
			for {
				n, _, err := conn.ReadFrom(buf)
				if err != nil {
					if errors.Is(err, os.ErrDeadlineExceeded) {
						select {
						case <-stop:
							return
						default:
							continue
						}
					}
					return
				}
				select {
				case reports <- append([]byte(nil), buf[:n]...):
				default:
				}
			}
		}()
		defer conn.SetReadDeadline(time.Now()) // unblocks the reader
	}
	// Packets go out on the media clock, start + i frames: a ticker drops
	// ticks when the process runs late, which would stretch the stream
	// and starve the peer's jitter buffer.
	frame := s.codec.FrameDuration()
	start := time.Now()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var buf []byte
	for i := 1; s.Pending() > 0; i++ {
		pkt, ok, err := s.Packet(buf[:0])
		if err != nil {
			return err
		}
		if ok {
			buf = pkt
			if _, err := conn.WriteTo(pkt, addr); err != nil {
				return fmt.Errorf("media: send to %v: %w", addr, err)
			}
			if o.onPacket != nil {
				o.onPacket(len(pkt))
			}
		}
		t.Reset(time.Until(start.Add(time.Duration(i) * frame)))
	wait:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case r := <-reports:
				if blocks, err := s.HandleRTCP(r); err == nil {
					for _, b := range blocks {
						o.onReport(b)
					}
				}
			case <-t.C:
				break wait
			}
		}
	}
	return nil
}

// ReceiveUDP reads SRTP packets from conn into r and hands the audio due
// every frame interval to sink, until ctx ends or nothing has arrived for
// idle (0: never). Packets that fail authentication or are replays are
// dropped and counted in r.Stats. It returns nil when it stops for idle.
func ReceiveUDP(ctx context.Context, conn net.PacketConn, r *Receiver, idle time.Duration, sink func([]int16) error, opts ...UDPOption) error {
	var o udpOptions
	for _, f := range opts {
		f(&o)
	}
	frame := r.codec.FrameDuration()
	buf := make([]byte, 1500)
	var report []byte
	var out []int16
	last := time.Now()
	nextReport := last.Add(o.reportInterval)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := conn.SetReadDeadline(time.Now().Add(frame / 2)); err != nil {
			return fmt.Errorf("media: receive: %w", err)
		}
		n, _, err := conn.ReadFrom(buf)
		now := time.Now()
		switch {
		case err == nil:
			last = now
			_ = r.Receive(now, buf[:n]) // counted in the stats
		case errors.Is(err, os.ErrDeadlineExceeded):
		default:
			return fmt.Errorf("media: receive: %w", err)
		}
		if out, err = r.Play(now, out[:0]); err != nil {
			return err
		}
		if len(out) > 0 {
			if err := sink(out); err != nil {
				return fmt.Errorf("media: receive sink: %w", err)
			}
		}
		if o.reportTo != nil && now.After(nextReport) {
			nextReport = now.Add(o.reportInterval)
			var ok bool
			if report, ok, err = r.RTCPReport(report[:0]); err == nil && ok {
				if _, err := conn.WriteTo(report, o.reportTo); err != nil {
					return fmt.Errorf("media: send RTCP to %v: %w", o.reportTo, err)
				}
			}
		}
		if idle > 0 && now.Sub(last) > idle {
			return nil
		}
	}
}
