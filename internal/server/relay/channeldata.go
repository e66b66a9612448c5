package relay

import (
	"encoding/binary"
	"errors"
)

// ChannelData framing, RFC 8656 §12.4: a 2-byte channel number, a 2-byte
// length of the application data, the data, and over UDP optionally
// padding to a multiple of four bytes (§12.5).
const (
	chanHeader = 4
	// Channel numbers pion/turn binds: 0x4000-0x7FFF (RFC 5766 §11, a
	// superset of RFC 8656 §12's 0x4000-0x4FFF). The fast path only ever
	// forwards numbers pion/turn bound, so accepting its range here keeps
	// the two in agreement.
	minChannel = 0x4000
	maxChannel = 0x7FFF
)

var (
	errChannelDataShort  = errors.New("relay: ChannelData shorter than its header")
	errChannelNumber     = errors.New("relay: ChannelData channel number out of range")
	errChannelDataLength = errors.New("relay: ChannelData length beyond the datagram")
)

// parseChannelData splits a ChannelData message into its channel number and
// application data; padding after the data is ignored.
func parseChannelData(b []byte) (ch uint16, data []byte, err error) {
	if len(b) < chanHeader {
		return 0, nil, errChannelDataShort
	}
	ch = binary.BigEndian.Uint16(b)
	if ch < minChannel || ch > maxChannel {
		return 0, nil, errChannelNumber
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n > len(b)-chanHeader {
		return 0, nil, errChannelDataLength
	}
	return ch, b[chanHeader : chanHeader+n], nil
}

// frameChannelData writes the ChannelData header for the n bytes of data at
// frame[chanHeader:] and zero padding up to a multiple of four (pion/turn
// pads over UDP too), and returns the message. frame must have room for the
// padding.
func frameChannelData(frame []byte, ch uint16, n int) []byte {
	binary.BigEndian.PutUint16(frame, ch)
	binary.BigEndian.PutUint16(frame[2:], uint16(n))
	end := chanHeader + n
	for end%4 != 0 {
		frame[end] = 0
		end++
	}
	return frame[:end]
}
