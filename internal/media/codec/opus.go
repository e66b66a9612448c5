package codec

import (
	"fmt"
	"time"
)

// OpusConfig configures an Opus encoder and decoder pair.
type OpusConfig struct {
	// SampleRate of the PCM in and out: 8000, 12000, 16000, 24000 or
	// 48000. 0 means 16000 (wideband, plenty for speech at 8-20 kbit/s).
	SampleRate int
	// Bitrate in bits per second, 6000..64000. 0 means 16000. The seed's
	// budget is 8 to 20 kbit/s one way at the IP level, headers included.
	Bitrate int
	// Frame is 10, 20, 40, 60, 80, 100 or 120 ms. 0 means 20 ms. Above
	// 60 ms libopus (1.2 and later) codes several frames into one packet
	// (RFC 6716 §3.2): 80 ms as two of 40, 100 ms as five of 20 and 120 ms
	// as two of 60 in SILK mode.
	Frame time.Duration
	// Complexity 0..10 trades CPU for quality. Nil means 10: at speech
	// bitrates one encoder costs a few percent of a core at most.
	Complexity *int
	// MaxBandwidth caps the audio band the encoder codes; 0 means
	// BandwidthWideband, which is what 16 kHz PCM carries. Within a
	// budget of about 20 kbit/s calls send mediumband, which scores
	// better there (internal/sipua newCodec).
	MaxBandwidth Bandwidth
	// CBR switches constant bitrate on, for a predictable bandwidth and
	// packet sizes that leak less about speech (RFC 6562).
	CBR bool
	// DTX stops sending during silence; the stream then has gaps in
	// timestamps, not in sequence numbers (RFC 7587 §3.1.3).
	DTX bool
	// FEC adds in-band forward error correction for the expected
	// PacketLoss percentage (RFC 6716 §2.1.7).
	FEC        bool
	PacketLoss int
	// PayloadType is the dynamic RTP payload type negotiated in SDP.
	// 0 means 111.
	PayloadType uint8
}

// Bandwidth is an Opus audio bandwidth (RFC 6716 §2, Table 1), with
// libopus's constant values.
type Bandwidth int

// Opus bandwidths.
const (
	BandwidthNarrowband    Bandwidth = 1101 // 4 kHz
	BandwidthMediumband    Bandwidth = 1102 // 6 kHz
	BandwidthWideband      Bandwidth = 1103 // 8 kHz
	BandwidthSuperWideband Bandwidth = 1104 // 12 kHz
	BandwidthFullband      Bandwidth = 1105 // 20 kHz
)

func (b Bandwidth) String() string {
	switch b {
	case BandwidthNarrowband:
		return "narrowband"
	case BandwidthMediumband:
		return "mediumband"
	case BandwidthWideband:
		return "wideband"
	case BandwidthSuperWideband:
		return "super-wideband"
	case BandwidthFullband:
		return "fullband"
	}
	return fmt.Sprintf("Bandwidth(%d)", int(b))
}

// DefaultOpusPayloadType is the dynamic payload type used when none is
// negotiated.
const DefaultOpusPayloadType = 111

func (c *OpusConfig) withDefaults() (OpusConfig, error) {
	o := *c
	if o.SampleRate == 0 {
		o.SampleRate = 16000
	}
	if o.Bitrate == 0 {
		o.Bitrate = 16000
	}
	if o.Frame == 0 {
		o.Frame = 20 * time.Millisecond
	}
	if o.Complexity == nil {
		c := 10
		o.Complexity = &c
	}
	if o.PayloadType == 0 {
		o.PayloadType = DefaultOpusPayloadType
	}
	if o.MaxBandwidth == 0 {
		o.MaxBandwidth = BandwidthWideband
	}
	switch o.SampleRate {
	case 8000, 12000, 16000, 24000, 48000:
	default:
		return o, fmt.Errorf("codec: Opus sample rate %d: want 8000, 12000, 16000, 24000 or 48000", o.SampleRate)
	}
	switch o.Frame {
	case 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond,
		80 * time.Millisecond, 100 * time.Millisecond, 120 * time.Millisecond:
	default:
		return o, fmt.Errorf("codec: Opus frame %v: want 10, 20, 40, 60, 80, 100 or 120ms", o.Frame)
	}
	switch {
	case o.Bitrate < 6000 || o.Bitrate > 64000:
		return o, fmt.Errorf("codec: Opus bitrate %d: want 6000..64000 bit/s", o.Bitrate)
	case *o.Complexity < 0 || *o.Complexity > 10:
		return o, fmt.Errorf("codec: Opus complexity %d: want 0..10", *o.Complexity)
	case o.PacketLoss < 0 || o.PacketLoss > 100:
		return o, fmt.Errorf("codec: Opus packet loss %d%%: want 0..100", o.PacketLoss)
	case o.MaxBandwidth < BandwidthNarrowband || o.MaxBandwidth > BandwidthFullband:
		return o, fmt.Errorf("codec: Opus bandwidth %d: want narrowband..fullband", int(o.MaxBandwidth))
	case o.PayloadType < 96 || o.PayloadType > 127:
		return o, fmt.Errorf("codec: Opus payload type %d: want a dynamic one, 96..127", o.PayloadType)
	}
	return o, nil
}

// opusClockRate is the RTP clock of Opus whatever the coded bandwidth
// (RFC 7587 §4.1).
const opusClockRate = 48000

// maxOpusPacket bounds one encoded frame; at 64 kbit/s and 60 ms a frame
// is 480 bytes.
const maxOpusPacket = 1275

// HasFEC implements FECDecoder.
func (o *Opus) HasFEC(payload []byte) bool {
	fec, err := OpusPacketHasFEC(payload)
	return err == nil && fec
}

// PacketDuration implements PacketTimer.
func (o *Opus) PacketDuration(payload []byte) (time.Duration, error) {
	return OpusPacketDuration(payload)
}

// checkFrame accepts the Opus frame durations a packet can carry: a
// multiple of 2.5 ms up to 120 ms (RFC 6716 §3.2.5).
func checkFrame(d time.Duration) error {
	if d <= 0 || d > 120*time.Millisecond || d%(2500*time.Microsecond) != 0 {
		return fmt.Errorf("codec: Opus frame %v: want a multiple of 2.5 ms up to 120 ms", d)
	}
	return nil
}
