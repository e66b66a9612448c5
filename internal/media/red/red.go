// Package red is the RTP payload for redundant audio data (RFC 2198): one
// packet carries the current (primary) encoding of a frame and, before it,
// redundant encodings of earlier frames, so that a receiver can rebuild a
// frame whose own packet was lost from the packet after it.
package red

import (
	"errors"
	"fmt"
)

// Limits of the block headers (RFC 2198 §3): a 7-bit payload type, a
// 14-bit timestamp offset and a 10-bit length.
const (
	MaxTSOffset = 1<<14 - 1
	MaxLength   = 1<<10 - 1
	// MaxBlocks bounds the redundant blocks Parse accepts; a sender has
	// no use for more (RFC 2198 §4 keeps to one or two in practice).
	MaxBlocks = 8
)

// ErrMalformed is returned for a payload that is not a well-formed RFC
// 2198 payload.
var ErrMalformed = errors.New("red: malformed redundant audio payload")

// Block is one encoding of one frame.
type Block struct {
	PT uint8 // payload type of the encoding
	// TSOffset is how far this frame's timestamp lies before the RTP
	// header's, in clock ticks; 0 for the primary block.
	TSOffset uint16
	Payload  []byte
}

// Append appends a payload carrying the redundant blocks, oldest first,
// and then the primary one (RFC 2198 §3: the headers of the redundant
// blocks, 4 bytes each with the F bit set, the 1-byte header of the
// primary, then the data in the same order).
func Append(dst []byte, primary Block, redundant ...Block) ([]byte, error) {
	if primary.PT > 127 {
		return dst, fmt.Errorf("red: primary payload type %d", primary.PT)
	}
	for _, b := range redundant {
		switch {
		case b.PT > 127:
			return dst, fmt.Errorf("red: payload type %d", b.PT)
		case b.TSOffset > MaxTSOffset:
			return dst, fmt.Errorf("red: timestamp offset %d over %d", b.TSOffset, MaxTSOffset)
		case len(b.Payload) > MaxLength:
			return dst, fmt.Errorf("red: block of %d bytes over %d", len(b.Payload), MaxLength)
		}
		h := uint32(1)<<31 | uint32(b.PT)<<24 | uint32(b.TSOffset)<<10 | uint32(len(b.Payload))
		dst = append(dst, byte(h>>24), byte(h>>16), byte(h>>8), byte(h))
	}
	dst = append(dst, primary.PT)
	for _, b := range redundant {
		dst = append(dst, b.Payload...)
	}
	return append(dst, primary.Payload...), nil
}

// Parse splits a payload into its primary block and its redundant ones,
// oldest first as sent. The payloads alias p.
func Parse(p []byte) (primary Block, redundant []Block, err error) {
	rest := p
	for {
		if len(rest) < 1 {
			return Block{}, nil, fmt.Errorf("%w: %d bytes end inside the headers", ErrMalformed, len(p))
		}
		if rest[0]&0x80 == 0 {
			primary.PT = rest[0]
			rest = rest[1:]
			break
		}
		if len(rest) < 4 {
			return Block{}, nil, fmt.Errorf("%w: truncated block header", ErrMalformed)
		}
		if len(redundant) == MaxBlocks {
			return Block{}, nil, fmt.Errorf("%w: more than %d redundant blocks", ErrMalformed, MaxBlocks)
		}
		h := uint32(rest[0])<<24 | uint32(rest[1])<<16 | uint32(rest[2])<<8 | uint32(rest[3])
		redundant = append(redundant, Block{PT: uint8(h >> 24 & 0x7F), TSOffset: uint16(h >> 10 & MaxTSOffset),
			Payload: make([]byte, h&MaxLength)})
		rest = rest[4:]
	}
	for i := range redundant {
		n := len(redundant[i].Payload)
		if n > len(rest) {
			return Block{}, nil, fmt.Errorf("%w: block of %d bytes, %d left", ErrMalformed, n, len(rest))
		}
		redundant[i].Payload = rest[:n:n]
		rest = rest[n:]
	}
	primary.Payload = rest
	return primary, redundant, nil
}
