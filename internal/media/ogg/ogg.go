// Package ogg writes and reads Ogg Opus files: the Ogg bitstream of
// RFC 3533 (pages with lacing and CRC-32) carrying one Opus stream as
// RFC 7845 maps it (OpusHead, OpusTags, then audio packets with the
// granule position counted at 48 kHz). Voice messages are stored this way
// so that any player opens them.
package ogg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

var (
	// ErrFormat is returned for bytes that are not a valid Ogg page.
	ErrFormat = errors.New("ogg: malformed page")
	// ErrCRC is returned when a page's checksum does not match.
	ErrCRC = errors.New("ogg: page checksum mismatch")
	// ErrNotOpus is returned when the stream does not start with OpusHead
	// and OpusTags (RFC 7845 §3).
	ErrNotOpus = errors.New("ogg: not an Ogg Opus stream")
)

// Header type flags (RFC 3533 §6).
const (
	flagContinued = 0x01
	flagBOS       = 0x02
	flagEOS       = 0x04
)

// maxPacket bounds a reassembled packet: an Opus packet is at most 120 ms
// of audio and never near this (RFC 6716 §3.2.1 caps a frame at 1275
// bytes), so a longer one is hostile input.
const maxPacket = 1 << 16

// crcTable is the CRC-32 of RFC 3533 §6: polynomial 0x04c11db7, no
// reflection, initial value and final XOR zero (not the zlib CRC).
var crcTable = func() [256]uint32 {
	var t [256]uint32
	for i := range t {
		r := uint32(i) << 24
		for j := 0; j < 8; j++ {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()

func crc(b []byte) uint32 {
	var c uint32
	for _, v := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^v]
	}
	return c
}

// page is one Ogg page (RFC 3533 §6).
type page struct {
	flags    byte
	granule  int64
	serial   uint32
	seq      uint32
	segments []byte // lacing values
	body     []byte
}

func (p *page) marshal() []byte {
	b := make([]byte, 27+len(p.segments)+len(p.body))
	copy(b, "OggS")
	b[5] = p.flags
	binary.LittleEndian.PutUint64(b[6:], uint64(p.granule))
	binary.LittleEndian.PutUint32(b[14:], p.serial)
	binary.LittleEndian.PutUint32(b[18:], p.seq)
	b[26] = byte(len(p.segments))
	copy(b[27:], p.segments)
	copy(b[27+len(p.segments):], p.body)
	binary.LittleEndian.PutUint32(b[22:], crc(b))
	return b
}

// readPage reads and verifies one page.
func readPage(r io.Reader) (*page, error) {
	var h [27]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if string(h[:4]) != "OggS" || h[4] != 0 {
		return nil, fmt.Errorf("%w: no capture pattern or version %d", ErrFormat, h[4])
	}
	p := &page{flags: h[5], granule: int64(binary.LittleEndian.Uint64(h[6:])),
		serial: binary.LittleEndian.Uint32(h[14:]), seq: binary.LittleEndian.Uint32(h[18:])}
	p.segments = make([]byte, h[26])
	if _, err := io.ReadFull(r, p.segments); err != nil {
		return nil, fmt.Errorf("%w: segment table: %v", ErrFormat, err)
	}
	n := 0
	for _, s := range p.segments {
		n += int(s)
	}
	p.body = make([]byte, n)
	if _, err := io.ReadFull(r, p.body); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrFormat, err)
	}
	want := binary.LittleEndian.Uint32(h[22:])
	binary.LittleEndian.PutUint32(h[22:], 0)
	all := append(append(h[:], p.segments...), p.body...)
	if crc(all) != want {
		return nil, fmt.Errorf("%w: page %d", ErrCRC, p.seq)
	}
	return p, nil
}
