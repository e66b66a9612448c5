package ratchet

import (
	"crypto/aes"
	"encoding/binary"
	"fmt"
)

// messageVersion is the first byte of every ratchet message.
const messageVersion = 1

const (
	flagInitial = 0x01 // the message carries a PQXDH initial message

	headerSize = 32 + 4 + 4 // DH public key, PN, N
)

// Header is the Double Ratchet message header (§3.1 HEADER): the sender's
// current ratchet public key, the length of its previous sending chain (PN)
// and the message number in the current chain (N). It travels in clear and
// is authenticated as associated data.
type Header struct {
	DH [32]byte
	PN uint32
	N  uint32
}

func (h Header) appendTo(b []byte) []byte {
	b = append(b, h.DH[:]...)
	b = binary.BigEndian.AppendUint32(b, h.PN)
	return binary.BigEndian.AppendUint32(b, h.N)
}

func parseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) != headerSize {
		return h, fmt.Errorf("header of %d bytes: %w", len(b), ErrMalformed)
	}
	copy(h.DH[:], b[:32])
	h.PN = binary.BigEndian.Uint32(b[32:36])
	h.N = binary.BigEndian.Uint32(b[36:40])
	return h, nil
}

// Message is a parsed ratchet message:
//
//	version   1 byte   = 1
//	flags     1 byte   bit 0: a PQXDH initial message follows; other bits zero
//	[length   2 bytes  big-endian length of the initial message
//	 initial  length bytes, see InitialMessage]
//	header    40 bytes DH public key (32) | PN (uint32 BE) | N (uint32 BE)
//	body      AES-256-CBC ciphertext, a multiple of 16 bytes, then the
//	          32-byte HMAC-SHA-256 tag
//
// Every byte before the body is authenticated as the "header" of CONCAT.
type Message struct {
	// Initial is the PQXDH initial message that an initiator attaches to
	// every message until it receives a reply (PQXDH §3.3), or nil.
	Initial *InitialMessage
	Header  Header
	Body    []byte

	prefix []byte // the raw bytes before Body, authenticated as the header
}

// ParseMessage parses a ratchet message. It checks structure only; nothing
// is authenticated until a Session decrypts it.
func ParseMessage(b []byte) (*Message, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("message of %d bytes: %w", len(b), ErrMalformed)
	}
	if b[0] != messageVersion {
		return nil, fmt.Errorf("message version %d: %w", b[0], ErrVersion)
	}
	flags := b[1]
	if flags&^flagInitial != 0 {
		return nil, fmt.Errorf("message flags %#x: %w", flags, ErrMalformed)
	}
	m := &Message{}
	rest := b[2:]
	if flags&flagInitial != 0 {
		if len(rest) < 2 {
			return nil, fmt.Errorf("initial message length: %w", ErrMalformed)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if len(rest) < n {
			return nil, fmt.Errorf("initial message of %d bytes, %d left: %w", n, len(rest), ErrMalformed)
		}
		im, err := ParseInitialMessage(rest[:n])
		if err != nil {
			return nil, fmt.Errorf("initial message: %w", err)
		}
		m.Initial = im
		rest = rest[n:]
	}
	if len(rest) < headerSize {
		return nil, fmt.Errorf("header: %w", ErrMalformed)
	}
	h, err := parseHeader(rest[:headerSize])
	if err != nil {
		return nil, err
	}
	m.Header = h
	body := rest[headerSize:]
	if len(body) < aes.BlockSize+tagSize || (len(body)-tagSize)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("body of %d bytes: %w", len(body), ErrMalformed)
	}
	m.prefix = b[:len(b)-len(body)]
	m.Body = body
	return m, nil
}

// appendPrefix writes everything a message carries before its body.
func appendPrefix(b []byte, initial []byte, h Header) []byte {
	b = append(b, messageVersion)
	if initial != nil {
		b = append(b, flagInitial)
		b = binary.BigEndian.AppendUint16(b, uint16(len(initial)))
		b = append(b, initial...)
	} else {
		b = append(b, 0)
	}
	return h.appendTo(b)
}
