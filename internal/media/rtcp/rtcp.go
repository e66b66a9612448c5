// Package rtcp is the receiver side of RTCP for a call's one audio stream
// (RFC 3550 §6.4): the reception statistics of the peer's stream
// (sequence numbers, loss, interarrival jitter; §A.1, §A.3, §A.8), the
// compound receiver report that carries them, and the parsing of the
// reports the peer sends about our stream. The wire format is
// github.com/pion/rtcp; SRTCP protection is internal/media/srtp.
package rtcp

import (
	"errors"
	"fmt"
	"time"

	pionrtcp "github.com/pion/rtcp"
)

// ErrPacket is returned for bytes that are not a well-formed compound RTCP
// packet.
var ErrPacket = errors.New("rtcp: malformed packet")

// Block is one reception report block (RFC 3550 §6.4.1): what a receiver
// says about one source.
type Block struct {
	SSRC uint32 // the source reported on
	// FractionLost is the share of packets lost since the previous
	// report, in 1/256 (§6.4.1).
	FractionLost uint8
	// TotalLost is the cumulative number of packets lost (24 bits,
	// signed: duplicates can make it negative).
	TotalLost int32
	// HighestSeq is the extended highest sequence number received.
	HighestSeq uint32
	// Jitter is the interarrival jitter in RTP timestamp units.
	Jitter uint32
}

// LossPercent is FractionLost in percent.
func (b Block) LossPercent() float64 { return float64(b.FractionLost) * 100 / 256 }

// Reception keeps the statistics of the stream received from one source.
// It is not safe for concurrent use.
type Reception struct {
	clock    int
	started  bool
	ssrc     uint32
	base     uint32 // first extended sequence number
	max      uint32 // highest extended sequence number
	received uint64

	expectedPrior, receivedPrior uint64

	jitter      float64 // timestamp units, §6.4.1
	lastTransit float64
	haveTransit bool
}

// NewReception returns statistics for a stream with the given RTP clock
// rate (48000 for Opus).
func NewReception(clockRate int) *Reception {
	return &Reception{clock: clockRate}
}

// maxDropout is how far ahead a sequence number may jump and still count
// as the same stream (RFC 3550 §A.1).
const maxDropout = 3000

// Update records one packet that authenticated, with its sequence number,
// RTP timestamp and arrival time. A new SSRC restarts the statistics.
func (r *Reception) Update(ssrc uint32, seq uint16, ts uint32, arrival time.Time) {
	if !r.started || ssrc != r.ssrc {
		*r = Reception{clock: r.clock, started: true, ssrc: ssrc, base: uint32(seq), max: uint32(seq)}
	} else {
		delta := seq - uint16(r.max)
		switch {
		case delta == 0:
		case delta < maxDropout:
			ext := r.max + uint32(delta) // carries into the cycle count on wrap
			r.max = ext
		case delta > 0xFFFF-100:
			// Reordered or duplicate: counted as received only.
		default:
			// A jump: the sender restarted its numbering (§A.1 would
			// wait for two packets; with SRTP authenticated packets one
			// is enough).
			*r = Reception{clock: r.clock, started: true, ssrc: ssrc, base: uint32(seq), max: uint32(seq),
				jitter: r.jitter}
		}
	}
	r.received++
	// §A.8: transit time in timestamp units; the jitter is its mean
	// deviation, smoothed by 1/16.
	arrivalTS := float64(arrival.UnixNano()) * float64(r.clock) / 1e9
	transit := arrivalTS - float64(ts)
	if r.haveTransit {
		d := transit - r.lastTransit
		if d < 0 {
			d = -d
		}
		if d < float64(r.clock) { // a timestamp jump (DTX, restart) is no jitter
			r.jitter += (d - r.jitter) / 16
		}
	}
	r.lastTransit, r.haveTransit = transit, true
}

// SSRC is the source seen last; ok is false before any packet.
func (r *Reception) SSRC() (ssrc uint32, ok bool) { return r.ssrc, r.started }

// Expected is the number of packets the sender sent from the first to the
// highest received (§A.3).
func (r *Reception) Expected() uint64 {
	if !r.started {
		return 0
	}
	return uint64(r.max-r.base) + 1
}

// Received is the number of packets received, duplicates included.
func (r *Reception) Received() uint64 { return r.received }

// Lost is the cumulative number of packets lost (§A.3).
func (r *Reception) Lost() int64 { return int64(r.Expected()) - int64(r.received) }

// Jitter is the interarrival jitter (§6.4.1).
func (r *Reception) Jitter() time.Duration {
	if r.clock == 0 {
		return 0
	}
	return time.Duration(r.jitter * float64(time.Second) / float64(r.clock))
}

// Block returns the report block for the stream and starts a new interval
// for the fraction lost (§A.3).
func (r *Reception) Block() Block {
	expected, received := r.Expected(), r.received
	ei, ri := int64(expected-r.expectedPrior), int64(received-r.receivedPrior)
	r.expectedPrior, r.receivedPrior = expected, received
	var fraction uint8
	if lost := ei - ri; ei > 0 && lost > 0 {
		fraction = uint8(min(lost<<8/ei, 255))
	}
	lost := max(min(r.Lost(), 0x7FFFFF), -0x800000) // 24-bit signed
	return Block{SSRC: r.ssrc, FractionLost: fraction, TotalLost: int32(lost), HighestSeq: r.max, Jitter: uint32(r.jitter)}
}

// MarshalReceiverReport returns a compound RTCP packet (§6.1): a receiver
// report from sender (our SSRC) with the blocks, and the SDES CNAME every
// compound packet must carry (§6.5.1).
func MarshalReceiverReport(sender uint32, cname string, blocks ...Block) ([]byte, error) {
	rr := &pionrtcp.ReceiverReport{SSRC: sender}
	for _, b := range blocks {
		rr.Reports = append(rr.Reports, pionrtcp.ReceptionReport{
			SSRC: b.SSRC, FractionLost: b.FractionLost, TotalLost: uint32(b.TotalLost) & 0xFFFFFF,
			LastSequenceNumber: b.HighestSeq, Jitter: b.Jitter,
		})
	}
	sdes := &pionrtcp.SourceDescription{Chunks: []pionrtcp.SourceDescriptionChunk{{
		Source: sender,
		Items:  []pionrtcp.SourceDescriptionItem{{Type: pionrtcp.SDESCNAME, Text: cname}},
	}}}
	out, err := pionrtcp.Marshal([]pionrtcp.Packet{rr, sdes})
	if err != nil {
		return nil, fmt.Errorf("rtcp: marshal receiver report: %w", err)
	}
	return out, nil
}

// ParseReports returns the report blocks of the sender and receiver
// reports in a compound RTCP packet; other packet types are skipped.
func ParseReports(b []byte) ([]Block, error) {
	pkts, err := pionrtcp.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPacket, err)
	}
	var out []Block
	add := func(rs []pionrtcp.ReceptionReport) {
		for _, r := range rs {
			lost := int32(r.TotalLost<<8) >> 8 // sign-extend 24 bits
			out = append(out, Block{SSRC: r.SSRC, FractionLost: r.FractionLost, TotalLost: lost,
				HighestSeq: r.LastSequenceNumber, Jitter: r.Jitter})
		}
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *pionrtcp.ReceiverReport:
			add(p.Reports)
		case *pionrtcp.SenderReport:
			add(p.Reports)
		}
	}
	return out, nil
}
