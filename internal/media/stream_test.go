package media

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/srtp"
	"github.com/phonex/phonex/internal/media/wav"
	"github.com/phonex/phonex/internal/testpeer"
)

func sessions(t testing.TB) (a, b *srtp.Session) {
	t.Helper()
	k1 := srtp.Keys{MasterKey: bytes.Repeat([]byte{1}, 16), MasterSalt: bytes.Repeat([]byte{2}, 14)}
	k2 := srtp.Keys{MasterKey: bytes.Repeat([]byte{3}, 16), MasterSalt: bytes.Repeat([]byte{4}, 14)}
	a, err := srtp.NewSession(srtp.Config{Cipher: srtp.CipherAES1, AuthTag: srtp.TagHS32, Local: k1, Remote: k2})
	if err != nil {
		t.Fatal(err)
	}
	b, err = srtp.NewSession(srtp.Config{Cipher: srtp.CipherAES1, AuthTag: srtp.TagHS32, Local: k2, Remote: k1})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

type arrival struct {
	at  time.Time
	pkt []byte
}

// call plays a 2 s 440 Hz tone recorded at 44.1 kHz through a Sender and a
// simulated network (0-30 ms of jitter, 5 % loss, some duplicates) into a
// Receiver that plays at 48 kHz, through WAV files at both ends, and
// returns the recording.
func call(t *testing.T, enc, dec codec.Codec) (rec *wav.Audio, ss SendStats, rs ReceiveStats, dropped int) {
	t.Helper()
	var src bytes.Buffer
	if err := wav.Encode(&src, &wav.Audio{SampleRate: 44100, Samples: dsp.Sine(2*44100, 44100, 440, 0.5)}); err != nil {
		t.Fatal(err)
	}
	in, err := wav.Decode(&src)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := sessions(t)
	snd, err := NewSender(SenderConfig{Codec: enc, SRTP: sa, InputRate: in.SampleRate})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(ReceiverConfig{Codec: dec, SRTP: sb, OutputRate: 48000, Delay: 60 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	snd.Write(in.Samples)
	snd.Flush()

	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Unix(0, 0)
	var net []arrival
	frame := enc.FrameDuration()
	for i := 0; ; i++ {
		pkt, ok, err := snd.Packet(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		sent := t0.Add(time.Duration(i) * frame)
		if rng.IntN(100) < 5 {
			dropped++
			continue
		}
		net = append(net, arrival{sent.Add(time.Duration(rng.IntN(30)) * time.Millisecond), pkt})
		if rng.IntN(100) < 3 {
			net = append(net, arrival{sent.Add(40 * time.Millisecond), pkt})
		}
	}
	sort.SliceStable(net, func(i, j int) bool { return net[i].at.Before(net[j].at) })

	var sink bytes.Buffer
	var out []int16
	end := t0.Add(2500 * time.Millisecond)
	for now := t0; now.Before(end); now = now.Add(5 * time.Millisecond) {
		for len(net) > 0 && !net[0].at.After(now) {
			if err := rcv.Receive(net[0].at, net[0].pkt); err != nil && !errors.Is(err, srtp.ErrReplay) {
				t.Fatal(err)
			}
			net = net[1:]
		}
		if out, err = rcv.Play(now, out); err != nil {
			t.Fatal(err)
		}
	}
	out = rcv.Flush(out)
	if err := wav.Encode(&sink, &wav.Audio{SampleRate: 48000, Samples: out}); err != nil {
		t.Fatal(err)
	}
	if rec, err = wav.Decode(&sink); err != nil {
		t.Fatal(err)
	}
	return rec, snd.Stats(), rcv.Stats(), dropped
}

func TestCall(t *testing.T) {
	type pair struct {
		name     string
		enc, dec func() (codec.Codec, error)
	}
	pcmu := func() (codec.Codec, error) { return codec.NewPCMU(20 * time.Millisecond) }
	pairs := []pair{{"PCMU", pcmu, pcmu}}
	opus := func() (codec.Codec, error) {
		return codec.NewOpus(codec.OpusConfig{Bitrate: 12000, Frame: 20 * time.Millisecond})
	}
	if o, err := opus(); err == nil {
		o.Close()
		pairs = append(pairs, pair{"opus", opus, opus})
	} else {
		t.Run("opus", func(t *testing.T) { testpeer.Missing(t, "libopus", err.Error()) })
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			enc, err := p.enc()
			if err != nil {
				t.Fatal(err)
			}
			defer enc.Close()
			dec, err := p.dec()
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			rec, ss, rs, dropped := call(t, enc, dec)
			t.Logf("sent %+v (%.1f kbit/s SRTP, %.1f kbit/s IP)", ss, ss.Bitrate()/1000, ss.IPBitrate()/1000)
			t.Logf("received %+v", rs)
			if ss.Packets != 100 {
				t.Errorf("sent %d packets for 2 s at 20 ms", ss.Packets)
			}
			// Frames after the end of the stream count as lost too. 20 ms
			// gaps are the codec's to conceal, not bridged.
			if dropped == 0 || int(rs.Played) != 100-dropped || int(rs.Lost) < dropped || rs.Duplicates == 0 || rs.Bridged != 0 {
				t.Errorf("receive stats %+v", rs)
			}
			if d := rec.Duration(); d < 1.9 || d > 2.6 {
				t.Errorf("recorded %.2f s", d)
			}
			// Judge the steady part: the first 60 ms is jitter delay.
			mid := rec.Samples[48000/4 : 48000*7/4]
			f, purity := dsp.DominantFrequency(mid, 48000, 100, 4000)
			if math.Abs(f-440) > 3 || purity < 0.5 {
				t.Fatalf("recorded tone %.1f Hz, purity %.2f", f, purity)
			}
			t.Logf("recorded %.1f Hz, purity %.2f", f, purity)
		})
	}
}

func TestReceiverRejects(t *testing.T) {
	sa, sb := sessions(t)
	c, _ := codec.NewPCMA(20 * time.Millisecond)
	snd, _ := NewSender(SenderConfig{Codec: c, SRTP: sa})
	rcv, _ := NewReceiver(ReceiverConfig{Codec: c, SRTP: sb})
	snd.Write(make([]int16, 320))
	p1, _, _ := snd.Packet(nil)
	now := time.Unix(0, 0)
	bad := bytes.Clone(p1)
	bad[len(bad)-1] ^= 1
	if err := rcv.Receive(now, bad); !errors.Is(err, srtp.ErrAuth) {
		t.Fatalf("tampered: %v", err)
	}
	if err := rcv.Receive(now, p1); err != nil {
		t.Fatal(err)
	}
	if err := rcv.Receive(now, p1); !errors.Is(err, srtp.ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	// Same keys, other payload type.
	u, _ := codec.NewPCMU(20 * time.Millisecond)
	snd2, _ := NewSender(SenderConfig{Codec: u, SRTP: sa})
	snd2.Write(make([]int16, 160))
	p2, _, _ := snd2.Packet(nil)
	if err := rcv.Receive(now, p2); !errors.Is(err, ErrPayloadType) {
		t.Fatalf("wrong payload type: %v", err)
	}
	s := rcv.Stats()
	if s.AuthFailures != 1 || s.Duplicates != 1 || s.Malformed != 1 || s.Packets != 4 {
		t.Fatalf("stats %+v", s)
	}
}

// TestFECRecovery runs the lossy call with Opus in-band FEC: the frames
// lost on the way are rebuilt from the following packet when it is in the
// jitter buffer, and concealed otherwise.
func TestFECRecovery(t *testing.T) {
	newOpus := func() (codec.Codec, error) {
		return codec.NewOpus(codec.OpusConfig{Bitrate: 24000, Frame: 20 * time.Millisecond, FEC: true, PacketLoss: 10})
	}
	enc, err := newOpus()
	if err != nil {
		testpeer.Missing(t, "libopus", err.Error())
		return
	}
	defer enc.Close()
	dec, err := newOpus()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	_, _, rs, dropped := call(t, enc, dec)
	t.Logf("dropped %d, received %+v", dropped, rs)
	if rs.FECRecovered == 0 {
		t.Errorf("no frame recovered by FEC: %+v", rs)
	}
	if rs.FECRecovered+rs.Concealed != rs.Lost {
		t.Errorf("FEC %d + concealed %d != lost %d", rs.FECRecovered, rs.Concealed, rs.Lost)
	}
	// Each dropped packet in the middle of the stream has its successor
	// buffered (the jitter delay is 60 ms, the jitter at most 30 ms).
	if int(rs.FECRecovered) > dropped {
		t.Errorf("%d frames recovered from %d dropped", rs.FECRecovered, dropped)
	}
}

// TestFollowPacketTime: a peer that sends 60 ms packets when we expected
// its 20 ms ones (as a peer following our a=ptime does) is played at its
// pace, without concealing two frames in three.
func TestFollowPacketTime(t *testing.T) {
	enc, err := codec.NewOpus(codec.OpusConfig{Frame: 60 * time.Millisecond})
	if err != nil {
		testpeer.Missing(t, "libopus", err.Error())
		return
	}
	defer enc.Close()
	dec, err := codec.NewOpus(codec.OpusConfig{Frame: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	sa, sb := sessions(t)
	snd, err := NewSender(SenderConfig{Codec: enc, SRTP: sa})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(ReceiverConfig{Codec: dec, SRTP: sb})
	if err != nil {
		t.Fatal(err)
	}
	snd.Write(dsp.Sine(16000, 16000, 440, 0.5)) // 1 s
	t0 := time.Unix(0, 0)
	var out []int16
	for i := 0; ; i++ {
		pkt, ok, err := snd.Packet(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		now := t0.Add(time.Duration(i) * 60 * time.Millisecond)
		if err := rcv.Receive(now, pkt); err != nil {
			t.Fatal(err)
		}
		if out, err = rcv.Play(now, out); err != nil {
			t.Fatal(err)
		}
	}
	// Play out what is buffered.
	if out, err = rcv.Play(t0.Add(16*60*time.Millisecond+120*time.Millisecond), out); err != nil {
		t.Fatal(err)
	}
	rs := rcv.Stats()
	if rs.PacketTimeChanges != 1 || rs.Played != 16 || rs.Lost > 1 {
		t.Fatalf("stats %+v", rs)
	}
	if len(out) < 16*960 || len(out) > 17*960 {
		t.Fatalf("played %d samples for 16 packets of 60 ms", len(out))
	}
}

// TestRTCPAdapt: a receiver report travels over SRTCP to the sender, which
// hands the loss it reports to the encoder, rising at once and decaying by
// a quarter per report.
func TestRTCPAdapt(t *testing.T) {
	enc, err := codec.NewOpus(codec.OpusConfig{Frame: 20 * time.Millisecond, FEC: true})
	if err != nil {
		testpeer.Missing(t, "libopus", err.Error())
		return
	}
	defer enc.Close()
	dec, err := codec.NewOpus(codec.OpusConfig{Frame: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	sa, sb := sessions(t)
	snd, err := NewSender(SenderConfig{Codec: enc, SRTP: sa})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(ReceiverConfig{Codec: dec, SRTP: sb, SSRC: 0x1234})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := rcv.RTCPReport(nil); ok {
		t.Fatal("report before any packet")
	}
	snd.Write(make([]int16, 320*40))
	t0 := time.Unix(0, 0)
	var hints []int
	for i := 0; i < 40; i++ {
		pkt, ok, err := snd.Packet(nil)
		if err != nil || !ok {
			t.Fatal(err)
		}
		// Lose 3 packets of the first 10, then none.
		if i != 2 && i != 5 && i != 8 {
			if err := rcv.Receive(t0.Add(time.Duration(i)*20*time.Millisecond), pkt); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 9 {
			r, ok, err := rcv.RTCPReport(nil)
			if err != nil || !ok {
				t.Fatal(err)
			}
			blocks, err := snd.HandleRTCP(r)
			if err != nil || len(blocks) != 1 {
				t.Fatalf("blocks %v, %v", blocks, err)
			}
			snd.Adapt(blocks[0])
			hints = append(hints, snd.Stats().LossHint)
		}
	}
	// 3 of 10 lost: fraction 76/256, 29.7 %, capped at 5 (maxLossHint);
	// then down by one per clean report.
	if fmt.Sprint(hints) != "[5 4 3 2]" || enc.Settings().PacketLoss != 2 {
		t.Fatalf("loss hints %v, encoder %d", hints, enc.Settings().PacketLoss)
	}
	if s := snd.Stats(); s.Reports != 4 || s.PeerLoss != 0 {
		t.Fatalf("sender stats %+v", s)
	}
	// A report forged without the keys is refused.
	forged, _, _ := rcv.RTCPReport(nil)
	forged[len(forged)-1] ^= 1
	if _, err := snd.HandleRTCP(forged); !errors.Is(err, srtp.ErrAuth) {
		t.Fatalf("forged report: %v", err)
	}
}

// TestLongPackets: 120 ms packets (two 60 ms Opus frames each) to a
// receiver that expected 20 ms: it follows the packet time, buffers one
// packet and 60 ms, conceals a lost packet over its whole duration, and
// plays the tone at its pitch.
func TestLongPackets(t *testing.T) {
	enc, err := codec.NewOpus(codec.OpusConfig{Frame: 120 * time.Millisecond, Bitrate: 21000})
	if err != nil {
		testpeer.Missing(t, "libopus", err.Error())
		return
	}
	defer enc.Close()
	dec, err := codec.NewOpus(codec.OpusConfig{Frame: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	sa, sb := sessions(t)
	snd, err := NewSender(SenderConfig{Codec: enc, SRTP: sa})
	if err != nil {
		t.Fatal(err)
	}
	rcv, err := NewReceiver(ReceiverConfig{Codec: dec, SRTP: sb})
	if err != nil {
		t.Fatal(err)
	}
	snd.Write(dsp.Sine(32000, 16000, 440, 0.5)) // 2 s
	snd.Flush()
	t0 := time.Unix(0, 0)
	var out []int16
	const frame = 120 * time.Millisecond
	n := 0
	for ; ; n++ {
		pkt, ok, err := snd.Packet(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		now := t0.Add(time.Duration(n) * frame)
		if n != 5 {
			if err := rcv.Receive(now, pkt); err != nil {
				t.Fatal(err)
			}
		}
		if out, err = rcv.Play(now, out); err != nil {
			t.Fatal(err)
		}
	}
	if out, err = rcv.Play(t0.Add(time.Duration(n-1)*frame+180*time.Millisecond), out); err != nil {
		t.Fatal(err)
	}
	rs := rcv.Stats()
	if rs.PacketTime != frame || rs.PlayoutDelay != 180*time.Millisecond || rs.Lost != 1 || rs.Concealed != 1 || rs.Bridged != 1 ||
		int(rs.Played) != n-1 {
		t.Fatalf("%d packets, stats %+v", n, rs)
	}
	if len(out) != n*1920 {
		t.Fatalf("played %d samples for %d packets of 120 ms", len(out), n)
	}
	f, purity := dsp.DominantFrequency(out[len(out)/4:len(out)*3/4], 16000, 100, 4000)
	if math.Abs(f-440) > 3 || purity < 0.5 {
		t.Fatalf("played %.1f Hz, purity %.2f", f, purity)
	}
	// The lost packet is bridged to the next one, already buffered
	// (rs.Bridged above): the tone goes on through the gap, and the
	// packet after it is played once, from the audio decoded for the
	// bridge (the sample count above).
	if f, purity := dsp.DominantFrequency(out[5*1920:6*1920], 16000, 100, 4000); math.Abs(f-440) > 3 || purity < 0.5 {
		t.Errorf("the lost packet played at %.1f Hz, purity %.2f", f, purity)
	}
}
