package media

import (
	"errors"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/rtcp"
	"github.com/phonex/phonex/internal/media/rtp"
	"github.com/phonex/phonex/internal/testpeer"
)

// TestRedundancy: redundancy starts at the first report of loss, with the
// primary's bitrate lowered; a packet lost afterwards is played from the
// redundant copy in the packet after it, not concealed; redundancy stops
// after Hold loss-free reports and the bitrate comes back; a receiver
// that did not negotiate the format refuses its packets.
func TestRedundancy(t *testing.T) {
	const frame = 120 * time.Millisecond
	newOpus := func(bitrate int) *codec.Opus {
		o, err := codec.NewOpus(codec.OpusConfig{Frame: frame, Bitrate: bitrate, PayloadType: 96})
		if err != nil {
			testpeer.Missing(t, "libopus", err.Error())
			return nil
		}
		t.Cleanup(func() { o.Close() })
		return o
	}
	enc := newOpus(21000)
	if enc == nil {
		return
	}
	redEnc, dec, plainDec := newOpus(6000), newOpus(21000), newOpus(21000)
	sa, sb := sessions(t)
	snd, err := NewSender(SenderConfig{Codec: enc, SRTP: sa,
		Redundancy: &SendRedundancy{PT: 121, Codec: redEnc, PrimaryBitrate: 15000, Hold: 2}})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(ReceiverConfig{Codec: dec, SRTP: sb, Redundancy: &RecvRedundancy{PT: 121}})
	if err != nil {
		t.Fatal(err)
	}
	snd.Write(dsp.Sine(16000*3, 16000, 440, 0.5)) // 3 s: 25 packets
	snd.Flush()
	t0 := time.Unix(0, 0)
	var out []int16
	var pts []uint8
	for i := 0; ; i++ {
		switch i {
		case 3: // a report of 10 % loss
			snd.Adapt(rtcp.Block{SSRC: snd.SSRC(), FractionLost: 26})
			if !snd.Redundancy() || enc.Settings().Bitrate != 15000 {
				t.Fatalf("after a lossy report: redundancy %v, bitrate %d", snd.Redundancy(), enc.Settings().Bitrate)
			}
		case 15, 16: // two clean ones
			snd.Adapt(rtcp.Block{SSRC: snd.SSRC()})
		}
		pkt, ok, err := snd.Packet(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		now := t0.Add(time.Duration(i) * frame)
		// The RTP header of an SRTP packet is in the clear (RFC 3711 §3.1).
		if p, err := rtp.Parse(pkt); err == nil {
			pts = append(pts, p.PayloadType)
		}
		if i == 8 { // lost; packet 9 carries its redundant copy
			if err := plainDecReceive(t, plainDec, pkt); !errors.Is(err, ErrPayloadType) {
				t.Fatalf("a receiver without redundancy took a red packet: %v", err)
			}
		} else if err := rcv.Receive(now, pkt); err != nil {
			t.Fatal(err)
		}
		if out, err = rcv.Play(now, out); err != nil {
			t.Fatal(err)
		}
	}
	if snd.Redundancy() || enc.Settings().Bitrate != 21000 {
		t.Fatalf("after two clean reports: redundancy %v, bitrate %d", snd.Redundancy(), enc.Settings().Bitrate)
	}
	// Packets 3..15 are red (121), the others Opus (96); the first red
	// one has no earlier frame to repeat.
	for i, pt := range pts {
		if want := map[bool]uint8{true: 121, false: 96}[i >= 3 && i < 16]; pt != want {
			t.Fatalf("packet %d has payload type %d, want %d (all: %v)", i, pt, want, pts)
		}
	}
	rs, ss := rcv.Stats(), snd.Stats()
	if ss.Redundant != 12 || rs.RedundantPackets != 12 || rs.RedRecovered != 1 || rs.Concealed != 0 || rs.Malformed != 0 {
		t.Fatalf("sent %+v, received %+v", ss, rs)
	}
	f, purity := dsp.DominantFrequency(out[len(out)/4:len(out)*3/4], 16000, 100, 4000)
	if f < 437 || f > 443 || purity < 0.5 {
		t.Fatalf("played %.1f Hz, purity %.2f", f, purity)
	}
}

// plainDecReceive offers a packet to a receiver that negotiated no
// redundancy, as a peer without red in its SDP would be.
func plainDecReceive(t *testing.T, dec codec.Codec, pkt []byte) error {
	t.Helper()
	_, sb := sessions(t)
	r, err := NewReceiver(ReceiverConfig{Codec: dec, SRTP: sb})
	if err != nil {
		t.Fatal(err)
	}
	return r.Receive(time.Unix(0, 0), pkt)
}

// TestRedundancyMinLoss: with MinLoss, redundancy follows the loss over
// the last packets reported on, not one report: 1 packet lost of 8 in a
// report (12.5 %) on a path losing 5 % does not switch it on, a path
// losing 15 % does, and it stops once the loss falls below 60 % of
// MinLoss for Hold reports.
func TestRedundancyMinLoss(t *testing.T) {
	for _, tt := range []struct {
		name   string
		lost   []int32 // per report of 8 packets
		wantOn []bool  // after each report
	}{
		{"5 % with one lossy report", []int32{0, 1, 0, 0, 1, 0, 0, 0, 0, 0}, []bool{false, false, false, false, false, false, false, false, false, false}},
		{"15 %", []int32{0, 1, 2, 1, 1, 1, 2, 1}, []bool{false, false, false, false, false, true, true, true}},
		{"15 % then none", []int32{0, 2, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, []bool{false, false, false, false, false, true, true, true, true, true, false, false, false, false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &Sender{red: &sendRed{cfg: SendRedundancy{MinLoss: 10, Hold: 3}}}
			var total int32
			for i, l := range tt.lost {
				total += l
				s.adaptRedundancy(rtcp.Block{TotalLost: total, HighestSeq: uint32(1000 + 8*i), FractionLost: uint8(l * 32)})
				if s.red.on != tt.wantOn[i] {
					t.Fatalf("after report %d (%d lost of %d): on %v, want %v (window %.1f %% of %.0f)", i, total, 8*i, s.red.on, tt.wantOn[i],
						100*s.red.window.lost/max(s.red.window.expect, 1), s.red.window.expect)
				}
			}
		})
	}
}
