package media

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/dsp"
)

// A short call over loopback UDP with real time.
func TestUDPLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	a, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sa, sb := sessions(t)
	c, _ := codec.NewPCMA(20 * time.Millisecond)
	snd, _ := NewSender(SenderConfig{Codec: c, SRTP: sa, InputRate: 16000})
	rcv, _ := NewReceiver(ReceiverConfig{Codec: c, SRTP: sb, OutputRate: 16000})
	snd.Write(dsp.Sine(8000, 16000, 1000, 0.5)) // 0.5 s
	snd.Flush()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	var got []int16
	go func() {
		done <- ReceiveUDP(ctx, b, rcv, 300*time.Millisecond, func(p []int16) error {
			got = append(got, p...)
			return nil
		})
	}()
	if err := SendUDP(ctx, a, b.LocalAddr(), snd); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := rcv.Stats()
	if s.Played < 20 || s.AuthFailures != 0 {
		t.Fatalf("stats %+v", s)
	}
	f, _ := dsp.DominantFrequency(got[:min(len(got), 6000)], 16000, 100, 4000)
	if math.Abs(f-1000) > 3 {
		t.Fatalf("tone at %.1f Hz", f)
	}
}
