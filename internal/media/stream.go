// Package media is the media path of a voice call: it turns PCM into SRTP
// packets and SRTP packets back into PCM. The layers live in their own
// packages (rtp, srtp, codec, jitter, dsp, wav); Sender and Receiver here
// tie them together, with no sockets and no goroutines, so that tests can
// run a call with a simulated clock and network. UDP wraps them thinly.
//
// The keys come from ZRTP (RFC 6189) per direction; see srtp.Config.
package media

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/jitter"
	"github.com/phonex/phonex/internal/media/rtcp"
	"github.com/phonex/phonex/internal/media/rtp"
	"github.com/phonex/phonex/internal/media/srtp"
)

// IPv4UDPOverhead is the bytes an IPv4 and a UDP header add to each packet
// (20 + 8), for bandwidth figures at the IP level.
const IPv4UDPOverhead = 28

// ErrPayloadType is returned for a packet whose payload type is not the
// codec's.
var ErrPayloadType = errors.New("media: unexpected RTP payload type")

// SenderConfig configures the sending half of a call.
type SenderConfig struct {
	Codec codec.Codec   // required; the Sender does not close it
	SRTP  *srtp.Session // required: media is never sent in the clear
	// InputRate is the rate of the PCM given to Write; 0 means the
	// codec's rate. Other rates are resampled.
	InputRate int
	// Rand supplies the SSRC and initial sequence number and timestamp;
	// nil means crypto/rand.
	Rand io.Reader
	// Redundancy, when set, sends redundant audio (RFC 2198) while the
	// peer reports loss (redundancy.go).
	Redundancy *SendRedundancy
}

// SendStats counts what a Sender produced.
type SendStats struct {
	Packets      uint64 // SRTP packets
	Bytes        uint64 // SRTP bytes (RTP header + payload + tag)
	PayloadBytes uint64 // codec bytes
	Frames       uint64 // frames encoded, sent or suppressed
	Suppressed   uint64 // frames not sent because DTX found silence
	Redundant    uint64 // packets that carried a redundant copy of the frame before (RFC 2198)
	Media        time.Duration
	// Reports is the number of RTCP reports on our stream received;
	// PeerLoss the loss the last one gave, in percent, and PeerJitter
	// its jitter.
	Reports    uint64
	PeerLoss   float64
	PeerJitter time.Duration
	// LossHint is the loss the encoder currently protects against, in
	// percent (Adapt).
	LossHint int
}

// Bitrate is the SRTP bits per second of audio sent.
func (s SendStats) Bitrate() float64 { return bitrate(s.Bytes, s.Media) }

// IPBitrate adds IPv4 and UDP headers to Bitrate.
func (s SendStats) IPBitrate() float64 {
	return bitrate(s.Bytes+IPv4UDPOverhead*s.Packets, s.Media)
}

func bitrate(bytes uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds()
}

// Sender encodes PCM into SRTP packets: resample → encode → packetize →
// protect. It is not safe for concurrent use.
type Sender struct {
	codec   codec.Codec
	session *srtp.Session
	rs      *dsp.Resampler
	pz      *rtp.Packetizer
	ts      uint32 // RTP clock ticks per frame
	pending []int16
	payload []byte
	rtp     []byte
	rtcpBuf []byte
	stats   SendStats
	red     *sendRed
}

// NewSender returns a Sender.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Codec == nil || cfg.SRTP == nil {
		return nil, errors.New("media: sender needs a codec and an SRTP session")
	}
	s := &Sender{codec: cfg.Codec, session: cfg.SRTP}
	if cfg.InputRate != 0 && cfg.InputRate != cfg.Codec.SampleRate() {
		var err error
		if s.rs, err = dsp.NewResampler(cfg.InputRate, cfg.Codec.SampleRate()); err != nil {
			return nil, fmt.Errorf("media: sender: %w", err)
		}
	}
	var err error
	if s.pz, err = rtp.NewPacketizer(cfg.Codec.PayloadType(), cfg.Rand); err != nil {
		return nil, fmt.Errorf("media: sender: %w", err)
	}
	s.ts = uint32(cfg.Codec.FrameDuration() * time.Duration(cfg.Codec.ClockRate()) / time.Second)
	if s.red, err = newSendRed(cfg.Redundancy, cfg.Codec); err != nil {
		return nil, err
	}
	if o, ok := cfg.Codec.(interface{ Settings() codec.OpusConfig }); ok {
		s.stats.LossHint = o.Settings().PacketLoss
	}
	return s, nil
}

// SSRC is the stream's synchronisation source, for SDP and RTCP.
func (s *Sender) SSRC() uint32 { return s.pz.SSRC() }

// Stats returns the counters so far.
func (s *Sender) Stats() SendStats { return s.stats }

// HandleRTCP takes one SRTCP packet from the peer and returns the report
// blocks it carries about our stream. Packets that fail authentication are
// dropped with srtp.ErrAuth.
func (s *Sender) HandleRTCP(packet []byte) ([]rtcp.Block, error) {
	plain, err := s.session.UnprotectRTCP(s.rtcpBuf[:0], packet)
	if err != nil {
		return nil, fmt.Errorf("media: RTCP: %w", err)
	}
	s.rtcpBuf = plain
	blocks, err := rtcp.ParseReports(plain)
	if err != nil {
		return nil, fmt.Errorf("media: RTCP: %w", err)
	}
	mine := blocks[:0]
	for _, b := range blocks {
		if b.SSRC == s.SSRC() {
			mine = append(mine, b)
		}
	}
	return mine, nil
}

// Adapt tunes the encoder to a report on our stream: the expected loss
// given to Opus follows the reported loss, rising at once and decaying
// slowly, so that the encoder keeps its frames robust (and, with FEC on
// and the bitrate for it, adds in-band redundancy; RFC 6716 §2.1.7)
// through bursts. Codecs without that knob only count the report.
func (s *Sender) Adapt(b rtcp.Block) {
	s.stats.Reports++
	s.stats.PeerLoss = b.LossPercent()
	s.stats.PeerJitter = time.Duration(float64(b.Jitter) * float64(time.Second) / float64(s.codec.ClockRate()))
	s.adaptRedundancy(b)
	la, ok := s.codec.(codec.LossAdapter)
	if !ok {
		return
	}
	target := int(math.Ceil(s.stats.PeerLoss))
	if target < s.stats.LossHint {
		// Decay by a quarter per report: one clean interval after a
		// lossy one is no proof the path has healed.
		target = s.stats.LossHint - max(1, (s.stats.LossHint-target)/4)
	}
	target = min(target, maxLossHint)
	if target != s.stats.LossHint && la.SetPacketLoss(target) == nil {
		s.stats.LossHint = target
	}
}

// maxLossHint caps the expected loss given to Opus. Above 5 % libopus
// 1.3.1 (decide_fec in opus_encoder.c) narrows the coded band, down to
// narrowband, until the bitrate it has is enough for in-band FEC; within
// the 20 kbit/s budget that is always the case, and the narrower band
// cost more than the FEC gave back: with 120 ms packets at 22 kbit/s,
// wideband PESQ at 5 % loss fell from 2.83 (expected loss 5 %, no FEC)
// to 2.28 (8 %, FEC at a narrower band), and 3.87 to 2.73 clean
// (bench/media/quality, docs/calls.md "Audio quality").
const maxLossHint = 5

// Write queues PCM at the input rate.
func (s *Sender) Write(pcm []int16) {
	if s.rs != nil {
		s.pending = s.rs.Process(s.pending, pcm)
		return
	}
	s.pending = append(s.pending, pcm...)
}

// Flush queues the resampler's tail and pads the last partial frame with
// silence, at the end of the input.
func (s *Sender) Flush() {
	if s.rs != nil {
		s.pending = s.rs.Flush(s.pending)
		s.rs = nil
	}
	if r := len(s.pending) % s.codec.FrameSamples(); r != 0 {
		s.pending = append(s.pending, make([]int16, s.codec.FrameSamples()-r)...)
	}
}

// Pending is the number of whole frames queued.
func (s *Sender) Pending() int { return len(s.pending) / s.codec.FrameSamples() }

// Packet encodes the next queued frame and returns its SRTP packet in
// dst[:0], or false when less than a frame is queued. Call it once per
// frame interval to pace a real call.
func (s *Sender) Packet(dst []byte) ([]byte, bool, error) {
	n := s.codec.FrameSamples()
	for len(s.pending) >= n {
		var err error
		pcm := s.pending[:n]
		s.payload, err = s.codec.Encode(s.payload[:0], pcm)
		s.pending = s.pending[n:]
		if len(s.pending) == 0 {
			s.pending = s.pending[:0:0] // let the backing array go
		}
		if err != nil {
			return nil, false, fmt.Errorf("media: send: %w", err)
		}
		s.stats.Frames++
		s.stats.Media += s.codec.FrameDuration()
		// libopus in DTX mode returns at most 2 bytes for a frame that
		// need not be sent.
		if s.codec.Name() == "opus" && len(s.payload) <= 2 {
			s.stats.Suppressed++
			s.pz.Skip(s.ts)
			if s.red != nil {
				s.red.havePrev = false // the next packet's frame before is not sent
			}
			continue
		}
		payload, pt, err := s.withRedundancy(pcm, s.payload)
		if err != nil {
			return nil, false, fmt.Errorf("media: send: %w", err)
		}
		if err := s.pz.SetPayloadType(pt); err != nil {
			return nil, false, fmt.Errorf("media: send: %w", err)
		}
		if s.rtp, err = s.pz.Packetize(s.rtp, payload, s.ts); err != nil {
			return nil, false, fmt.Errorf("media: send: %w", err)
		}
		out, err := s.session.Protect(dst, s.rtp)
		if err != nil {
			return nil, false, fmt.Errorf("media: send: %w", err)
		}
		s.stats.Packets++
		s.stats.Bytes += uint64(len(out))
		s.stats.PayloadBytes += uint64(len(s.payload))
		return out, true, nil
	}
	return nil, false, nil
}

// ReceiverConfig configures the receiving half of a call.
type ReceiverConfig struct {
	Codec codec.Codec   // required; the Receiver does not close it
	SRTP  *srtp.Session // required
	// OutputRate is the rate Play returns; 0 means the codec's rate.
	OutputRate int
	// Delay is the jitter buffer's target delay; 0 means one frame and
	// up to 60 ms more (at least 60 ms): enough for the packet after a
	// lost one to be there when the lost one is due (FEC), with room for
	// that much jitter, without adding a whole second frame of latency
	// with 80 to 120 ms packets.
	Delay time.Duration
	// Capacity of the jitter buffer in frames; 0 means 50.
	Capacity int
	// SSRC is ours, the sender of our RTCP receiver reports (the SSRC
	// our Sender uses); 0 means a random one.
	SSRC uint32
	// CNAME goes into our RTCP reports (RFC 3550 §6.5.1); "" means
	// "phonex".
	CNAME string
	// Redundancy, when set, takes redundant audio (RFC 2198) and plays
	// lost frames from it (redundancy.go).
	Redundancy *RecvRedundancy
}

// ReceiveStats counts what a Receiver saw.
type ReceiveStats struct {
	Packets      uint64 // packets offered
	Bytes        uint64 // bytes offered
	AuthFailures uint64 // dropped: SRTP authentication failed
	Duplicates   uint64 // dropped: SRTP replay window or jitter buffer saw it
	Late         uint64 // dropped: arrived after its play-out time
	Malformed    uint64 // dropped: not RTP, or wrong payload type
	SSRCChanges  uint64
	Played       uint64 // frames decoded from a packet
	Lost         uint64 // frames missing at play-out time: RedRecovered + FECRecovered + Concealed
	RedRecovered uint64 // lost frames played from the next packet's redundant copy (RFC 2198)
	FECRecovered uint64 // lost frames rebuilt from the next packet's in-band FEC
	Concealed    uint64 // lost frames filled by packet loss concealment (Bridged of them with the next packet's audio)
	// Bridged counts the lost frames concealed between the audio either
	// side of them (dsp.Bridge), the next packet being already buffered.
	Bridged uint64
	// RedundantPackets counts packets received in the redundant audio
	// format.
	RedundantPackets uint64
	// PacketTimeChanges counts switches to the packet time the peer
	// actually sends.
	PacketTimeChanges uint64
	Media             time.Duration
	// PacketTime is the audio per packet the peer sends, and
	// PlayoutDelay the jitter buffer's delay for it: together the
	// latency packetization and buffering add to what we hear (the
	// network's and the codec's not included).
	PacketTime   time.Duration
	PlayoutDelay time.Duration
}

// Bitrate is the SRTP bits per second received per second of audio played.
func (s ReceiveStats) Bitrate() float64 { return bitrate(s.Bytes, s.Media) }

// Receiver turns SRTP packets back into PCM: unprotect → jitter buffer →
// decode (or conceal) → resample. It is not safe for concurrent use.
type Receiver struct {
	cfg     ReceiverConfig
	jbPast  jitter.Stats // counters of jitter buffers replaced
	codec   codec.Codec
	session *srtp.Session
	jb      *jitter.Buffer
	rs      *dsp.Resampler
	ssrc    uint32
	haveSrc bool
	plain   []byte
	pcm     []int16
	stats   ReceiveStats
	rx      *rtcp.Reception
	me      uint32
	cname   string
	rtcpBuf []byte
	store   []byte // a payload as buffered, tagged with its format
	// past is the end of the audio played, at the codec's rate, for
	// bridging a lost frame (dsp.Bridge); ahead is the next frame's
	// audio, decoded early to bridge the frame before it, and aheadSeq
	// its sequence number.
	past, ahead []int16
	plc         []int16
	aheadSeq    uint16
	haveAhead   bool
}

// NewReceiver returns a Receiver.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Codec == nil || cfg.SRTP == nil {
		return nil, errors.New("media: receiver needs a codec and an SRTP session")
	}
	jb, err := newJitter(cfg, cfg.Codec.FrameDuration())
	if err != nil {
		return nil, fmt.Errorf("media: receiver: %w", err)
	}
	r := &Receiver{cfg: cfg, codec: cfg.Codec, session: cfg.SRTP, jb: jb, rx: rtcp.NewReception(cfg.Codec.ClockRate()),
		me: cfg.SSRC, cname: cfg.CNAME}
	if r.me == 0 {
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("media: receiver SSRC: %w", err)
		}
		r.me = binary.BigEndian.Uint32(b[:])
	}
	if r.cname == "" {
		r.cname = "phonex"
	}
	if cfg.OutputRate != 0 && cfg.OutputRate != cfg.Codec.SampleRate() {
		if r.rs, err = dsp.NewResampler(cfg.Codec.SampleRate(), cfg.OutputRate); err != nil {
			return nil, fmt.Errorf("media: receiver: %w", err)
		}
	}
	return r, nil
}

func jitterDelay(cfg ReceiverConfig, frame time.Duration) time.Duration {
	if cfg.Delay != 0 {
		return cfg.Delay
	}
	return max(frame+min(frame, 60*time.Millisecond), 60*time.Millisecond)
}

func newJitter(cfg ReceiverConfig, frame time.Duration) (*jitter.Buffer, error) {
	delay := jitterDelay(cfg, frame)
	capacity := cfg.Capacity
	if capacity == 0 {
		capacity = max(50, int(delay/frame)+2)
	}
	return jitter.New(jitter.Config{Frame: frame, Delay: delay, Capacity: capacity})
}

// Stats returns the counters so far.
func (r *Receiver) Stats() ReceiveStats {
	s := r.stats
	js := r.jb.Stats()
	s.Duplicates += r.jbPast.Duplicates + js.Duplicates
	s.Late = r.jbPast.Late + js.Late
	s.Played, s.Lost = r.jbPast.Played+js.Played, r.jbPast.Lost+js.Lost
	s.PacketTime = r.codec.FrameDuration()
	s.PlayoutDelay = jitterDelay(r.cfg, s.PacketTime)
	return s
}

// followPacketTime switches the jitter buffer and the decoder to the
// audio per packet the peer actually sends, when its packets carry
// another duration than expected: a=ptime is only a preference (RFC 4566
// §6), and some peers send in the packet time of our offer instead.
func (r *Receiver) followPacketTime(payload []byte) error {
	pt, ok := r.codec.(codec.PacketTimer)
	if !ok {
		return nil
	}
	d, err := pt.PacketDuration(payload)
	if err != nil || d == r.codec.FrameDuration() {
		return nil // a bad payload is concealed at play-out
	}
	jb, err := newJitter(r.cfg, d)
	if err != nil {
		return err
	}
	if err := pt.SetFrameDuration(d); err != nil {
		return err
	}
	js := r.jb.Stats()
	r.jbPast.Duplicates += js.Duplicates
	r.jbPast.Late += js.Late
	r.jbPast.Played += js.Played
	r.jbPast.Lost += js.Lost
	r.jb = jb
	r.haveAhead = false
	r.stats.PacketTimeChanges++
	return nil
}

// Receive takes one SRTP packet that arrived at now. A packet that fails
// authentication, is a replay, is late or malformed is dropped, counted,
// and reported as an error the caller may log and otherwise ignore.
func (r *Receiver) Receive(now time.Time, packet []byte) error {
	r.stats.Packets++
	r.stats.Bytes += uint64(len(packet))
	var err error
	r.plain, err = r.session.Unprotect(r.plain, packet)
	switch {
	case errors.Is(err, srtp.ErrAuth):
		r.stats.AuthFailures++
	case errors.Is(err, srtp.ErrReplay):
		r.stats.Duplicates++
	case err != nil:
		r.stats.Malformed++
	}
	if err != nil {
		return fmt.Errorf("media: receive: %w", err)
	}
	p, err := rtp.Parse(r.plain)
	if err != nil {
		r.stats.Malformed++
		return fmt.Errorf("media: receive: %w", err)
	}
	primary, stored, err := r.primaryOf(p.PayloadType, p.Payload)
	if err != nil {
		r.stats.Malformed++
		return fmt.Errorf("media: receive: %w", err)
	}
	if r.haveSrc && p.SSRC != r.ssrc {
		// The peer restarted its stream; the jitter buffer resyncs on the
		// new numbering.
		r.stats.SSRCChanges++
	}
	r.ssrc, r.haveSrc = p.SSRC, true
	r.rx.Update(p.SSRC, p.SequenceNumber, p.Timestamp, now)
	if err := r.followPacketTime(primary); err != nil {
		r.stats.Malformed++
		return fmt.Errorf("media: receive: %w", err)
	}
	res, err := r.jb.Push(now, p.SequenceNumber, stored)
	if err != nil {
		r.stats.Malformed++
		return fmt.Errorf("media: receive: %w", err)
	}
	if res == jitter.Resynced {
		// A new numbering: the frame decoded ahead belongs to the old one.
		r.haveAhead = false
	}
	return nil
}

// Play appends to dst the audio due by now at the output rate: one frame
// per frame interval once the jitter delay has passed, concealing lost
// frames. Call it at least once per frame interval.
func (r *Receiver) Play(now time.Time, dst []int16) ([]int16, error) {
	for {
		f, ok := r.jb.Pop(now)
		if !ok {
			return dst, nil
		}
		var err error
		switch {
		case f.Lost:
			r.haveAhead = false
			r.pcm, err = r.conceal(r.pcm[:0], f.Seq)
			if err != nil {
				return dst, fmt.Errorf("media: play: %w", err)
			}
		case r.haveAhead && f.Seq == r.aheadSeq:
			// Decoded already, to bridge the lost frame before it.
			r.pcm = append(r.pcm[:0], r.ahead...)
			r.haveAhead = false
		default:
			r.haveAhead = false
			primary, _ := r.unwrap(f.Payload)
			r.pcm, err = r.codec.Decode(r.pcm[:0], primary)
		}
		if err != nil {
			// A payload that authenticated but does not decode: conceal.
			r.stats.Malformed++
			if r.pcm, err = r.codec.Decode(r.pcm[:0], nil); err != nil {
				return dst, fmt.Errorf("media: play: %w", err)
			}
		}
		r.stats.Media += r.codec.FrameDuration()
		r.keepPast(r.pcm)
		if r.rs != nil {
			dst = r.rs.Process(dst, r.pcm)
		} else {
			dst = append(dst, r.pcm...)
		}
	}
}

// Reception is the loss and jitter of the stream received, as RTCP
// reports them (RFC 3550 §6.4.1).
func (r *Receiver) Reception() (lost int64, expected uint64, jitter time.Duration) {
	return r.rx.Lost(), r.rx.Expected(), r.rx.Jitter()
}

// JitterMS is the interarrival jitter in milliseconds.
func (r *Receiver) JitterMS() float64 { return float64(r.rx.Jitter()) / float64(time.Millisecond) }

// RTCPReport returns an SRTCP receiver report (RFC 3550 §6.4.2, RFC 3711
// §3.4) on the stream received since the previous one, in dst[:0], or
// false before any packet arrived.
func (r *Receiver) RTCPReport(dst []byte) ([]byte, bool, error) {
	if _, ok := r.rx.SSRC(); !ok {
		return nil, false, nil
	}
	var err error
	r.rtcpBuf, err = rtcp.MarshalReceiverReport(r.me, r.cname, r.rx.Block())
	if err != nil {
		return nil, false, fmt.Errorf("media: RTCP report: %w", err)
	}
	out, err := r.session.ProtectRTCP(dst, r.rtcpBuf)
	if err != nil {
		return nil, false, fmt.Errorf("media: RTCP report: %w", err)
	}
	return out, true, nil
}

// keepPast keeps the end of the audio played for bridging.
func (r *Receiver) keepPast(pcm []int16) {
	keep := dsp.BridgeContext(r.codec.SampleRate())
	if len(pcm) >= keep {
		r.past = append(r.past[:0], pcm[len(pcm)-keep:]...)
		return
	}
	r.past = append(r.past, pcm...)
	if over := len(r.past) - keep; over > 0 {
		r.past = append(r.past[:0], r.past[over:]...)
	}
}

// conceal fills the lost frame seq: from the redundant copy or the
// in-band FEC of the packet after it when that one is already buffered
// (RFC 2198; RFC 6716 §2.1.7; the jitter delay gives it the time to
// arrive), otherwise by the codec's packet loss concealment, bridged to
// the next packet's audio when that one is buffered.
func (r *Receiver) conceal(dst []int16, seq uint16) ([]int16, error) {
	if out, ok := r.fromRedundancy(dst); ok {
		return out, nil
	}
	if fd, ok := r.codec.(codec.FECDecoder); ok {
		if stored, ok := r.jb.Next(); ok {
			if next, _ := r.unwrap(stored); next != nil && fd.HasFEC(next) {
				out, err := fd.DecodeFEC(dst, next)
				if err == nil {
					r.stats.FECRecovered++
					return out, nil
				}
				// The next packet does not decode: it will be concealed
				// in its turn; conceal this one too.
			}
		}
	}
	r.stats.Concealed++
	// Bridging needs the next packet, with a primary encoding, and
	// enough audio either side to find a pitch period in: not with
	// packets shorter than dsp.BridgeContext (40 ms), whose gaps the
	// codec's concealment fills well enough.
	ctx := dsp.BridgeContext(r.codec.SampleRate())
	stored, ok := r.jb.Next()
	if !ok || len(r.past) < ctx || r.codec.FrameSamples() < ctx {
		return r.codec.Decode(dst, nil)
	}
	next, _ := r.unwrap(stored)
	if len(next) == 0 {
		return r.codec.Decode(dst, nil)
	}
	var err error
	if r.plc, err = r.codec.Decode(r.plc[:0], nil); err != nil {
		return dst, err
	}
	// The decoder runs through the gap before it decodes the next packet,
	// as it would without bridging; that packet's audio is played from
	// ahead when its turn comes.
	ahead, err := r.codec.Decode(r.ahead[:0], next)
	if err != nil {
		// It does not decode: concealed in its turn.
		return append(dst, r.plc...), nil
	}
	r.ahead, r.aheadSeq, r.haveAhead = ahead, seq+1, true
	if len(ahead) < ctx {
		return append(dst, r.plc...), nil
	}
	r.stats.Bridged++
	return dsp.Bridge(dst, r.past, r.plc, ahead, r.codec.SampleRate()), nil
}

// Flush appends the resampler's tail at the end of the call.
func (r *Receiver) Flush(dst []int16) []int16 {
	if r.rs != nil {
		dst = r.rs.Flush(dst)
		r.rs = nil
	}
	return dst
}
