// Command quality runs speech through the media path of a call, end to
// end on loopback: encoder, SRTP, UDP, a loss injector dropping a seeded
// random share of the packets, jitter buffer, decoder (FEC or
// concealment), with RTCP receiver reports over SRTCP flowing back to the
// sender, which adapts to the loss they report. It writes what the
// receiver played as a WAV file for a PESQ comparison with the input
// (bench/media/quality.sh) and prints the figures of the run as JSON.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/media"
	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/rtcp"
	"github.com/phonex/phonex/internal/media/srtp"
	"github.com/phonex/phonex/internal/media/wav"
)

type result struct {
	Settings    string  `json:"settings"`
	LossPercent float64 `json:"loss_percent"` // injected
	Seed        uint64  `json:"seed"`
	Packets     uint64  `json:"packets"`
	Dropped     uint64  `json:"dropped"`
	// IPKbps is one way at the IP level, averaged over the packets that
	// carry the reference (not the second of silence queued after it so
	// that the tail plays out, which would lower the figure); IPKbpsPeak
	// the highest over any 1 s of them; IPKbpsAll over every packet sent.
	IPKbps       float64 `json:"ip_kbps"`
	IPKbpsPeak   float64 `json:"ip_kbps_peak"`
	IPKbpsAll    float64 `json:"ip_kbps_all"`
	PayloadKbps  float64 `json:"payload_kbps"`
	Lost         uint64  `json:"lost"` // packets, as RTCP counts them
	FECRecovered uint64  `json:"fec_recovered"`
	RedRecovered uint64  `json:"red_recovered"`
	Redundant    uint64  `json:"redundant_sent"` // packets sent with a redundant copy
	Concealed    uint64  `json:"concealed"`
	Bridged      uint64  `json:"bridged"` // of the concealed, joined to the next packet's audio
	Late         uint64  `json:"late"`    // packets that came after their play-out time
	JitterMS     float64 `json:"jitter_ms"`
	Reports      int     `json:"rtcp_reports"`
	LossHintEnd  int     `json:"loss_hint_end"` // the encoder's expected loss after adaptation
	PlayedSec    float64 `json:"played_s"`
}

func main() {
	in := flag.String("in", "", "reference speech, WAV (any rate; mono or mixed down)")
	out := flag.String("out", "", "WAV file for what the receiver played (16 kHz)")
	loss := flag.Float64("loss", 0, "percentage of RTP packets the injector drops")
	seed := flag.Uint64("seed", 1, "seed of the loss injector")
	bitrate := flag.Int("bitrate", 12000, "Opus bitrate, bit/s")
	ptime := flag.Duration("ptime", 40*time.Millisecond, "audio per packet")
	complexity := flag.Int("complexity", 10, "Opus complexity 0..10")
	fec := flag.Bool("fec", true, "Opus in-band FEC")
	lossHint := flag.Int("loss-hint", 0, "initial expected loss given to the encoder, percent")
	adapt := flag.Bool("adapt", true, "adapt the encoder to the loss RTCP reports")
	dtx := flag.Bool("dtx", false, "Opus DTX")
	cbr := flag.Bool("cbr", false, "constant bitrate")
	band := flag.String("bandwidth", "wideband", "highest audio band Opus codes: narrowband, mediumband, wideband")
	tag := flag.String("tag", srtp.TagHS32, "SRTP auth tag, HS32 or HS80 (calls prefer HS32)")
	redOn := flag.Bool("red", false, "redundant audio (RFC 2198) while loss is reported")
	redPrimary := flag.Int("red-primary", 0, "primary bitrate while redundancy is on, bit/s (0: unchanged)")
	redRate := flag.Int("red-bitrate", 6000, "bitrate of the redundant encoding, bit/s")
	redMinLoss := flag.Float64("red-min-loss", 0, "loss in percent a report must give to switch redundancy on")
	sim := flag.Bool("sim", false, "simulate the network and the clock instead of real time on loopback sockets (for quick sweeps)")
	flag.Parse()
	if *in == "" || *out == "" {
		fail(errors.New("-in and -out are required"))
	}
	f, err := os.Open(*in)
	if err != nil {
		fail(err)
	}
	ref, err := wav.Decode(f)
	f.Close()
	if err != nil {
		fail(err)
	}
	bw, ok := map[string]codec.Bandwidth{"narrowband": codec.BandwidthNarrowband, "mediumband": codec.BandwidthMediumband, "wideband": codec.BandwidthWideband}[*band]
	if !ok {
		fail(fmt.Errorf("-bandwidth %q: want narrowband, mediumband or wideband", *band))
	}
	cfg := codec.OpusConfig{Bitrate: *bitrate, Frame: *ptime, Complexity: complexity, FEC: *fec, PacketLoss: *lossHint, DTX: *dtx, CBR: *cbr, MaxBandwidth: bw}
	if *redOn {
		redCfg = &redSettings{primary: *redPrimary, rate: *redRate, minLoss: *redMinLoss}
	}
	run := runUDP
	if *sim {
		run = runSim
	}
	res, pcm, err := run(ref, cfg, *tag, *loss, *seed, *adapt)
	if err != nil {
		fail(err)
	}
	o, err := os.Create(*out)
	if err != nil {
		fail(err)
	}
	if err := wav.Encode(o, &wav.Audio{SampleRate: 16000, Samples: pcm}); err != nil {
		fail(err)
	}
	if err := o.Close(); err != nil {
		fail(err)
	}
	res.Settings = fmt.Sprintf("opus %d bit/s, %s, %v, complexity %d, fec %v, dtx %v, cbr %v, %s, adapt %v", *bitrate, bw, *ptime, *complexity, *fec, *dtx, *cbr, *tag, *adapt)
	if redCfg != nil {
		res.Settings += fmt.Sprintf(", redundancy %d bit/s with the primary at %d", redCfg.rate, redCfg.primary)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

func keys(n int) srtp.Keys {
	k := srtp.Keys{MasterKey: make([]byte, n), MasterSalt: make([]byte, srtp.SaltLen)}
	rand.Read(k.MasterKey)
	rand.Read(k.MasterSalt)
	return k
}

// redSettings are the -red flags.
type redSettings struct {
	primary, rate int
	minLoss       float64
}

var redCfg *redSettings

// pipeline is the two ends of one call direction.
type pipeline struct {
	enc, dec *codec.Opus
	redEnc   *codec.Opus
	snd      *media.Sender
	rcv      *media.Receiver
}

func newPipeline(ref *wav.Audio, cfg codec.OpusConfig, tag string) (*pipeline, error) {
	enc, err := codec.NewOpus(cfg)
	if err != nil {
		return nil, err
	}
	dec, err := codec.NewOpus(cfg)
	if err != nil {
		return nil, err
	}
	ka, kb := keys(16), keys(16)
	sa, err := srtp.NewSession(srtp.Config{Cipher: srtp.CipherAES1, AuthTag: tag, Local: ka, Remote: kb})
	if err != nil {
		return nil, err
	}
	sb, err := srtp.NewSession(srtp.Config{Cipher: srtp.CipherAES1, AuthTag: tag, Local: kb, Remote: ka})
	if err != nil {
		return nil, err
	}
	p := &pipeline{enc: enc, dec: dec}
	scfg := media.SenderConfig{Codec: enc, SRTP: sa, InputRate: ref.SampleRate}
	rcfg := media.ReceiverConfig{Codec: dec, SRTP: sb}
	if redCfg != nil {
		rc := cfg
		rc.Bitrate, rc.FEC, rc.PacketLoss = redCfg.rate, false, 0
		if p.redEnc, err = codec.NewOpus(rc); err != nil {
			return nil, err
		}
		scfg.Redundancy = &media.SendRedundancy{PT: redPT, Codec: p.redEnc, PrimaryBitrate: redCfg.primary, MinLoss: redCfg.minLoss}
		rcfg.Redundancy = &media.RecvRedundancy{PT: redPT}
	}
	snd, err := media.NewSender(scfg)
	if err != nil {
		return nil, err
	}
	rcv, err := media.NewReceiver(rcfg)
	if err != nil {
		return nil, err
	}
	// Queue the speech with a second of silence after it, so the tail
	// plays out.
	snd.Write(ref.Samples)
	snd.Write(make([]int16, ref.SampleRate))
	snd.Flush()
	p.snd, p.rcv = snd, rcv
	return p, nil
}

// redPT is the payload type of the redundant audio format in these runs.
const redPT = 121

func (p *pipeline) close() {
	for _, c := range []*codec.Opus{p.enc, p.dec, p.redEnc} {
		if c != nil {
			c.Close()
		}
	}
}

// sent is one packet the sender sent: the frame it carries (counted from
// 0, frames DTX left unsent included) and its SRTP size.
type sent struct{ frame, size int }

// finish fills in the figures of a run; refFrames is how many frames the
// reference fills.
func (p *pipeline) finish(res *result, pkts []sent, refFrames int, frame time.Duration, reports int, pcm []int16) {
	ss, rs := p.snd.Stats(), p.rcv.Stats()
	res.Packets = ss.Packets
	res.IPKbpsAll = ss.IPBitrate() / 1000
	res.PayloadKbps = float64(ss.PayloadBytes) * 8 / ss.Media.Seconds() / 1000
	// Bytes per frame of the reference, 0 where DTX sent nothing.
	perFrame := make([]int, refFrames)
	for _, s := range pkts {
		if s.frame < refFrames {
			perFrame[s.frame] += s.size + media.IPv4UDPOverhead
		}
	}
	kbps := func(b []int) float64 {
		var t int
		for _, n := range b {
			t += n
		}
		return float64(t) * 8 / (time.Duration(len(b)) * frame).Seconds() / 1000
	}
	res.IPKbps = kbps(perFrame)
	perSec := int(time.Second / frame)
	for i := 0; i+perSec <= len(perFrame); i++ {
		res.IPKbpsPeak = max(res.IPKbpsPeak, kbps(perFrame[i:i+perSec]))
	}
	lost, _, _ := p.rcv.Reception()
	res.Lost, res.FECRecovered, res.Concealed, res.Late = uint64(max(lost, 0)), rs.FECRecovered, rs.Concealed, rs.Late
	res.RedRecovered, res.Redundant, res.Bridged = rs.RedRecovered, ss.Redundant, rs.Bridged
	res.JitterMS = p.rcv.JitterMS()
	res.Reports = reports
	res.LossHintEnd = p.enc.Settings().PacketLoss
	res.PlayedSec = float64(len(pcm)) / 16000
}

// runSim runs the pipeline on a simulated clock: packets take 5-15 ms,
// the receiver plays every 5 ms, and a report goes back every second.
func runSim(ref *wav.Audio, cfg codec.OpusConfig, tag string, loss float64, seed uint64, adapt bool) (result, []int16, error) {
	res := result{LossPercent: loss, Seed: seed}
	p, err := newPipeline(ref, cfg, tag)
	if err != nil {
		return res, nil, err
	}
	defer p.close()
	rng := mrand.New(mrand.NewPCG(seed, 0x5EED))
	delay := mrand.New(mrand.NewPCG(seed, 0xDE1A))
	frame := p.enc.FrameDuration()
	type arrival struct {
		at  time.Time
		pkt []byte
	}
	var net []arrival
	var pkts []sent
	frames := 0
	var pcm []int16
	reports := 0
	t0 := time.Unix(0, 0)
	nextSend, nextReport := t0, t0.Add(time.Second)
	end := t0.Add(time.Duration(p.snd.Pending())*frame + 300*time.Millisecond)
	for now := t0; now.Before(end); now = now.Add(5 * time.Millisecond) {
		for !nextSend.After(now) && p.snd.Pending() > 0 {
			pkt, ok, err := p.snd.Packet(nil)
			if err != nil {
				return res, nil, err
			}
			nextSend = nextSend.Add(frame)
			frames++
			if !ok {
				continue
			}
			pkts = append(pkts, sent{frames - 1, len(pkt)})
			if rng.Float64()*100 < loss {
				res.Dropped++
				continue
			}
			net = append(net, arrival{now.Add(5*time.Millisecond + time.Duration(delay.IntN(10))*time.Millisecond), pkt})
		}
		for len(net) > 0 && !net[0].at.After(now) {
			_ = p.rcv.Receive(net[0].at, net[0].pkt)
			net = net[1:]
		}
		if pcm, err = p.rcv.Play(now, pcm); err != nil {
			return res, nil, err
		}
		if now.After(nextReport) {
			nextReport = now.Add(time.Second)
			r, ok, err := p.rcv.RTCPReport(nil)
			if err != nil {
				return res, nil, err
			}
			if ok {
				blocks, err := p.snd.HandleRTCP(r)
				if err != nil {
					return res, nil, err
				}
				for _, b := range blocks {
					reports++
					if adapt {
						p.snd.Adapt(b)
					}
				}
			}
		}
	}
	p.finish(&res, pkts, refFrames(ref, frame), frame, reports, pcm)
	return res, pcm, nil
}

// refFrames is how many frames of d the reference fills, the last one
// partly.
func refFrames(ref *wav.Audio, d time.Duration) int {
	per := int(int64(ref.SampleRate) * int64(d) / int64(time.Second))
	return (len(ref.Samples) + per - 1) / per
}

// runUDP sends ref through the pipeline in real time on loopback
// sockets and returns what was played.
func runUDP(ref *wav.Audio, cfg codec.OpusConfig, tag string, loss float64, seed uint64, adapt bool) (result, []int16, error) {
	res := result{LossPercent: loss, Seed: seed}
	p, err := newPipeline(ref, cfg, tag)
	if err != nil {
		return res, nil, err
	}
	defer p.close()
	snd, rcv := p.snd, p.rcv
	// Sender, loss injector and receiver each have their own socket; the
	// injector forwards RTP one way and RTCP the other way untouched.
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			fail(err)
		}
		return c
	}
	sc, fc, rc := listen(), listen(), listen()
	defer sc.Close()
	defer fc.Close()
	defer rc.Close()
	sAddr, rAddr := sc.LocalAddr().(*net.UDPAddr), rc.LocalAddr().(*net.UDPAddr)
	var injMu sync.Mutex
	go func() {
		rng := mrand.New(mrand.NewPCG(seed, 0x5EED))
		buf := make([]byte, 1500)
		for {
			n, from, err := fc.ReadFromUDP(buf)
			if err != nil {
				return
			}
			to := rAddr
			if from.Port == rAddr.Port {
				to = sAddr // RTCP back to the sender
			} else if rng.Float64()*100 < loss {
				injMu.Lock()
				res.Dropped++
				injMu.Unlock()
				continue
			}
			fc.WriteToUDP(buf[:n], to)
		}
	}()
	fAddr := fc.LocalAddr()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pcm []int16
	rdone := make(chan error, 1)
	go func() {
		rdone <- media.ReceiveUDP(ctx, rc, rcv, time.Second, func(p []int16) error {
			pcm = append(pcm, p...)
			return nil
		}, media.WithReports(fAddr, time.Second))
	}()
	var reports int
	var pkts []sent
	sdone := make(chan error, 1)
	go func() {
		// OnPacket runs on the sending goroutine, after the packet's frame
		// was counted.
		sdone <- media.SendUDP(ctx, sc, fAddr, snd, media.OnPacket(func(n int) { pkts = append(pkts, sent{int(snd.Stats().Frames) - 1, n}) }),
			media.OnReport(func(r rtcp.Block) {
				reports++
				if adapt {
					snd.Adapt(r)
				}
			}))
	}()
	if err := <-sdone; err != nil {
		return res, nil, err
	}
	// Let the jitter buffer play out what is still in flight, then stop.
	time.Sleep(300 * time.Millisecond)
	cancel()
	if err := <-rdone; err != nil && !errors.Is(err, context.Canceled) {
		return res, nil, err
	}
	p.finish(&res, pkts, refFrames(ref, p.enc.FrameDuration()), p.enc.FrameDuration(), reports, pcm)
	return res, pcm, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "quality:", err)
	os.Exit(1)
}
