package media

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// SendUDP sends the Sender's queued frames to addr, one per frame
// interval, until the queue is empty or ctx ends. Queue the whole source
// (Write, then Flush) before calling it to play a file into a call.
func SendUDP(ctx context.Context, conn net.PacketConn, addr net.Addr, s *Sender) error {
	frame := s.codec.FrameDuration()
	t := time.NewTicker(frame)
	defer t.Stop()
	var buf []byte
	for s.Pending() > 0 {
		pkt, ok, err := s.Packet(buf[:0])
		if err != nil {
			return err
		}
		if ok {
			buf = pkt
			if _, err := conn.WriteTo(pkt, addr); err != nil {
				return fmt.Errorf("media: send to %v: %w", addr, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// ReceiveUDP reads SRTP packets from conn into r and hands the audio due
// every frame interval to sink, until ctx ends or nothing has arrived for
// idle (0: never). Packets that fail authentication or are replays are
// dropped and counted in r.Stats. It returns nil when it stops for idle.
func ReceiveUDP(ctx context.Context, conn net.PacketConn, r *Receiver, idle time.Duration, sink func([]int16) error) error {
	frame := r.codec.FrameDuration()
	buf := make([]byte, 1500)
	var pcm []int16
	last := time.Now()
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
		if pcm, err = r.Play(now, pcm[:0]); err != nil {
			return err
		}
		if len(pcm) > 0 {
			if err := sink(pcm); err != nil {
				return fmt.Errorf("media: receive sink: %w", err)
			}
		}
		if idle > 0 && now.Sub(last) > idle {
			return nil
		}
	}
}
