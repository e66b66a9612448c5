package zrtp

import (
	"encoding/binary"
	"fmt"
)

// ackMessage builds one of the 3-word messages that carry only their type.
func ackMessage(typ string) []byte { return newMessage(typ, msgHeaderLen) }

// ParseAck checks a 3-word message (HelloACK, Conf2ACK, ErrorACK, ClearACK,
// RelayACK) and returns its type.
func ParseAck(msg []byte) (string, error) {
	t, err := messageType(msg)
	if err != nil {
		return "", err
	}
	switch t {
	case typeHelloACK, typeConf2ACK, typeErrorACK, typeClearACK, typeRelayACK:
	default:
		return "", fmt.Errorf("%w: %q is not an acknowledgement", ErrMalformed, t)
	}
	if len(msg) != msgHeaderLen {
		return "", fmt.Errorf("%w: %s of %d bytes", ErrMalformed, t, len(msg))
	}
	return t, nil
}

func encodeError(code Code) []byte {
	b := newMessage(typeError, 16)
	binary.BigEndian.PutUint32(b[12:16], uint32(code))
	return b
}

// ParseError parses an Error message (§5.9) and returns its code.
func ParseError(msg []byte) (Code, error) {
	if err := expectType(msg, typeError, 16); err != nil {
		return 0, err
	}
	if len(msg) != 16 {
		return 0, fmt.Errorf("%w: Error of %d bytes", ErrMalformed, len(msg))
	}
	return Code(binary.BigEndian.Uint32(msg[12:16])), nil
}

// ParseGoClear parses a GoClear message (§5.11) and returns its clear_mac.
func ParseGoClear(msg []byte) ([8]byte, error) {
	var mac [8]byte
	if err := expectType(msg, typeGoClear, 20); err != nil {
		return mac, err
	}
	if len(msg) != 20 {
		return mac, fmt.Errorf("%w: GoClear of %d bytes", ErrMalformed, len(msg))
	}
	copy(mac[:], msg[12:20])
	return mac, nil
}

// Ping is the Ping message (§5.15).
type Ping struct {
	Version      [4]byte
	EndpointHash [8]byte
}

// ParsePing parses a Ping message.
func ParsePing(msg []byte) (*Ping, error) {
	if err := expectType(msg, typePing, 24); err != nil {
		return nil, err
	}
	if len(msg) != 24 {
		return nil, fmt.Errorf("%w: Ping of %d bytes", ErrMalformed, len(msg))
	}
	p := &Ping{}
	copy(p.Version[:], msg[12:16])
	copy(p.EndpointHash[:], msg[16:24])
	return p, nil
}

// PingACK is the PingACK message (§5.16).
type PingACK struct {
	Version      [4]byte
	SenderHash   [8]byte
	ReceivedHash [8]byte
	ReceivedSSRC uint32
}

func (p *PingACK) encode() []byte {
	b := newMessage(typePingACK, 36)
	copy(b[12:16], p.Version[:])
	copy(b[16:24], p.SenderHash[:])
	copy(b[24:32], p.ReceivedHash[:])
	binary.BigEndian.PutUint32(b[32:36], p.ReceivedSSRC)
	return b
}

// ParsePingACK parses a PingACK message.
func ParsePingACK(msg []byte) (*PingACK, error) {
	if err := expectType(msg, typePingACK, 36); err != nil {
		return nil, err
	}
	if len(msg) != 36 {
		return nil, fmt.Errorf("%w: PingACK of %d bytes", ErrMalformed, len(msg))
	}
	p := &PingACK{}
	copy(p.Version[:], msg[12:16])
	copy(p.SenderHash[:], msg[16:24])
	copy(p.ReceivedHash[:], msg[24:32])
	p.ReceivedSSRC = binary.BigEndian.Uint32(msg[32:36])
	return p, nil
}

// ParseSASrelay checks the clear part of a SASrelay message (§5.13). This
// engine never trusts a MiTM, so only the framing matters.
func ParseSASrelay(msg []byte) error {
	return expectType(msg, typeSASrelay, 76)
}
