// Package rtp builds and parses the RTP packets of a voice call (RFC
// 3550): one codec frame per packet, a random SSRC and random initial
// sequence number and timestamp (RFC 3550 §5.1), and the marker bit on the
// first packet of a talkspurt (RFC 3551 §4.1). Headers are encoded by
// github.com/pion/rtp.
package rtp

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	pionrtp "github.com/pion/rtp"
)

// HeaderLen is the length of an RTP header without CSRCs or extension.
const HeaderLen = 12

// ErrPacket means the bytes are not an RTP version 2 packet.
var ErrPacket = errors.New("rtp: malformed packet")

// Packetizer numbers and stamps the packets of one outgoing stream. It is
// not safe for concurrent use.
type Packetizer struct {
	pt        uint8
	ssrc      uint32
	seq       uint16
	ts        uint32
	talkspurt bool
	hdr       pionrtp.Header
}

// NewPacketizer returns a packetizer for payload type pt whose SSRC,
// first sequence number and first timestamp are read from rnd
// (crypto/rand when nil).
func NewPacketizer(pt uint8, rnd io.Reader) (*Packetizer, error) {
	if pt > 127 {
		return nil, fmt.Errorf("rtp: payload type %d does not fit 7 bits", pt)
	}
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [10]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return nil, fmt.Errorf("rtp: random SSRC and sequence: %w", err)
	}
	return &Packetizer{
		pt:        pt,
		ssrc:      binary.BigEndian.Uint32(b[0:4]),
		seq:       binary.BigEndian.Uint16(b[4:6]),
		ts:        binary.BigEndian.Uint32(b[6:10]),
		talkspurt: true,
	}, nil
}

// SSRC is the stream's synchronisation source.
func (p *Packetizer) SSRC() uint32 { return p.ssrc }

// SetPayloadType changes the payload type of the packets that follow, for
// a stream that switches between formats negotiated in SDP (the redundant
// audio format of RFC 2198 and the codec's own).
func (p *Packetizer) SetPayloadType(pt uint8) error {
	if pt > 127 {
		return fmt.Errorf("rtp: payload type %d does not fit 7 bits", pt)
	}
	p.pt = pt
	return nil
}

// Next returns the sequence number and timestamp the next packet gets.
func (p *Packetizer) Next() (seq uint16, ts uint32) { return p.seq, p.ts }

// Packetize appends to dst[:0] an RTP packet carrying payload, then
// advances the sequence number by one and the timestamp by samples (at the
// RTP clock rate).
func (p *Packetizer) Packetize(dst, payload []byte, samples uint32) ([]byte, error) {
	p.hdr = pionrtp.Header{
		Version:        2,
		Marker:         p.talkspurt,
		PayloadType:    p.pt,
		SequenceNumber: p.seq,
		Timestamp:      p.ts,
		SSRC:           p.ssrc,
	}
	n := HeaderLen + len(payload)
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	dst = dst[:n]
	if _, err := p.hdr.MarshalTo(dst); err != nil {
		return nil, fmt.Errorf("rtp: marshal header: %w", err)
	}
	copy(dst[HeaderLen:], payload)
	p.seq++
	p.ts += samples
	p.talkspurt = false
	return dst, nil
}

// Skip advances the timestamp over samples that are not sent (silence
// suppressed by DTX), without using a sequence number, and marks the next
// packet as the start of a talkspurt.
func (p *Packetizer) Skip(samples uint32) {
	p.ts += samples
	p.talkspurt = true
}

// Packet is a parsed RTP packet; Payload aliases the parsed bytes.
type Packet struct {
	PayloadType    uint8
	Marker         bool
	SequenceNumber uint16
	Timestamp      uint32
	SSRC           uint32
	Payload        []byte
}

// Parse reads an RTP packet, skipping CSRCs, a header extension and
// padding (RFC 3550 §5.1, §5.3.1).
func Parse(b []byte) (Packet, error) {
	if len(b) < HeaderLen || b[0]>>6 != 2 {
		return Packet{}, fmt.Errorf("rtp: parse %d bytes: %w", len(b), ErrPacket)
	}
	var h pionrtp.Header
	n, err := h.Unmarshal(b)
	if err != nil {
		return Packet{}, fmt.Errorf("rtp: parse header: %w: %w", ErrPacket, err)
	}
	end := len(b)
	if h.Padding {
		pad := int(b[len(b)-1])
		if pad == 0 || n+pad > end {
			return Packet{}, fmt.Errorf("rtp: parse: padding of %d bytes: %w", pad, ErrPacket)
		}
		end -= pad
	}
	return Packet{
		PayloadType:    h.PayloadType,
		Marker:         h.Marker,
		SequenceNumber: h.SequenceNumber,
		Timestamp:      h.Timestamp,
		SSRC:           h.SSRC,
		Payload:        b[n:end],
	}, nil
}
