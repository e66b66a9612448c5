package zrtp

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// MagicCookie identifies a ZRTP packet (RFC 6189 §5).
const MagicCookie = 0x5a525450

const (
	packetHeaderLen = 12
	crcLen          = 4
	// maxPacketLen bounds what we parse; our largest message (the hybrid
	// Commit) is well under it.
	maxPacketLen = 4096
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// IsZRTP reports whether b looks like a ZRTP packet (first byte 0x10 and the
// magic cookie), so a demultiplexer can tell it from RTP, RTCP and STUN.
func IsZRTP(b []byte) bool {
	return len(b) >= packetHeaderLen && b[0] == 0x10 && binary.BigEndian.Uint32(b[4:8]) == MagicCookie
}

// packetCRC is the CRC-32C of RFC 4960 Appendix B. The value goes on the wire
// least significant byte first, as SCTP stores it; bzrtp and GNU ZRTP do the
// same (RFC 6189 §5 refers to the SCTP definition).
func packetCRC(b []byte) uint32 {
	return crc32.Checksum(b, castagnoli)
}

// EncodePacket frames a ZRTP message (RFC 6189 §5): 0x10, zero, sequence
// number, magic cookie, SSRC, message, CRC.
func EncodePacket(seq uint16, ssrc uint32, msg []byte) []byte {
	b := make([]byte, packetHeaderLen+len(msg)+crcLen)
	b[0] = 0x10
	binary.BigEndian.PutUint16(b[2:4], seq)
	binary.BigEndian.PutUint32(b[4:8], MagicCookie)
	binary.BigEndian.PutUint32(b[8:12], ssrc)
	copy(b[packetHeaderLen:], msg)
	n := packetHeaderLen + len(msg)
	binary.LittleEndian.PutUint32(b[n:], packetCRC(b[:n]))
	return b
}

// ParsePacket checks the framing and CRC of a ZRTP packet and returns its
// sequence number, SSRC and the message (a sub-slice of b). The message's own
// preamble and length are checked too.
func ParsePacket(b []byte) (seq uint16, ssrc uint32, msg []byte, err error) {
	if len(b) < packetHeaderLen+msgHeaderLen+crcLen {
		return 0, 0, nil, ErrShortPacket
	}
	if len(b) > maxPacketLen {
		return 0, 0, nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if b[0] != 0x10 || binary.BigEndian.Uint32(b[4:8]) != MagicCookie {
		return 0, 0, nil, ErrNotZRTP
	}
	n := len(b) - crcLen
	if binary.LittleEndian.Uint32(b[n:]) != packetCRC(b[:n]) {
		return 0, 0, nil, ErrBadCRC
	}
	msg = b[packetHeaderLen:n]
	if _, err := messageType(msg); err != nil {
		return 0, 0, nil, err
	}
	return binary.BigEndian.Uint16(b[2:4]), binary.BigEndian.Uint32(b[8:12]), msg, nil
}
