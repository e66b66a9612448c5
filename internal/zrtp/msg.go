package zrtp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Message type blocks (RFC 6189 §5.1.1).
const (
	typeHello    = "Hello   "
	typeHelloACK = "HelloACK"
	typeCommit   = "Commit  "
	typeDHPart1  = "DHPart1 "
	typeDHPart2  = "DHPart2 "
	typeConfirm1 = "Confirm1"
	typeConfirm2 = "Confirm2"
	typeConf2ACK = "Conf2ACK"
	typeError    = "Error   "
	typeErrorACK = "ErrorACK"
	typeGoClear  = "GoClear "
	typeClearACK = "ClearACK"
	typeSASrelay = "SASrelay"
	typeRelayACK = "RelayACK"
	typePing     = "Ping    "
	typePingACK  = "PingACK "
)

const (
	msgHeaderLen = 12 // preamble, length, message type block
	preamble     = 0x505a
	macLen       = 8
	hashImageLen = 32
	// Version is the protocol version this engine speaks (§4.1.1).
	Version = "1.10"
)

// messageType checks the preamble and the length field of a message (the
// length counts 32-bit words and must match exactly) and returns its type.
func messageType(msg []byte) (string, error) {
	if len(msg) < msgHeaderLen {
		return "", ErrShortPacket
	}
	if binary.BigEndian.Uint16(msg[0:2]) != preamble {
		return "", fmt.Errorf("%w: bad preamble", ErrMalformed)
	}
	if int(binary.BigEndian.Uint16(msg[2:4]))*4 != len(msg) {
		return "", fmt.Errorf("%w: length field %d words, message %d bytes", ErrMalformed, binary.BigEndian.Uint16(msg[2:4]), len(msg))
	}
	return string(msg[4:12]), nil
}

// newMessage allocates a message of n bytes (a multiple of 4) with its header.
func newMessage(typ string, n int) []byte {
	b := make([]byte, n)
	binary.BigEndian.PutUint16(b[0:2], preamble)
	binary.BigEndian.PutUint16(b[2:4], uint16(n/4))
	copy(b[4:12], typ)
	return b
}

// expectType parses the header and checks the type and, if min > 0, the
// minimum length.
func expectType(msg []byte, typ string, min int) error {
	t, err := messageType(msg)
	if err != nil {
		return err
	}
	if t != typ {
		return fmt.Errorf("%w: got %q, want %q", ErrMalformed, t, typ)
	}
	if len(msg) < min {
		return fmt.Errorf("%w: %s of %d bytes, need %d", ErrMalformed, typ, len(msg), min)
	}
	return nil
}

// implicitMAC is the implicit MAC of §5.1.2.2 (HMAC-SHA-256) truncated to
// 64 bits, keyed by a hash image; it covers a message without its MAC.
func implicitMAC(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)[:macLen]
}

// sealTrailingMAC writes the implicit MAC over msg[:len-8] into the last 8
// bytes.
func sealTrailingMAC(msg, key []byte) {
	n := len(msg) - macLen
	copy(msg[n:], implicitMAC(key, msg[:n]))
}

// checkTrailingMAC verifies the trailing MAC of a raw message.
func checkTrailingMAC(msg, key []byte) bool {
	n := len(msg) - macLen
	if n < 0 {
		return false
	}
	return hmac.Equal(msg[n:], implicitMAC(key, msg[:n]))
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
