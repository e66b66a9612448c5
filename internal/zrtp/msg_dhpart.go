package zrtp

import "fmt"

// DHPart is a DHPart1 or DHPart2 message (RFC 6189 §5.5, §5.6).
type DHPart struct {
	Part  int // 1 or 2
	H1    [32]byte
	RS1ID [8]byte
	RS2ID [8]byte
	AuxID [8]byte
	PBXID [8]byte
	PV    []byte
	MAC   [8]byte
	raw   []byte
}

// Raw returns the message bytes exactly as received or encoded.
func (d *DHPart) Raw() []byte { return d.raw }

const dhPartFixedLen = 84 // header 12, H1 32, four IDs 32, MAC 8

func dhPartType(part int) string {
	if part == 1 {
		return typeDHPart1
	}
	return typeDHPart2
}

// encode builds the message and seals it with the implicit MAC keyed by H0.
func (d *DHPart) encode(h0 []byte) ([]byte, error) {
	if len(d.PV)%4 != 0 {
		return nil, fmt.Errorf("zrtp: public value of %d bytes is not whole words", len(d.PV))
	}
	b := newMessage(dhPartType(d.Part), dhPartFixedLen+len(d.PV))
	copy(b[12:44], d.H1[:])
	copy(b[44:52], d.RS1ID[:])
	copy(b[52:60], d.RS2ID[:])
	copy(b[60:68], d.AuxID[:])
	copy(b[68:76], d.PBXID[:])
	copy(b[76:], d.PV)
	sealTrailingMAC(b, h0)
	copy(d.MAC[:], b[len(b)-macLen:])
	d.raw = b
	return b, nil
}

// ParseDHPart parses a DHPart1 (part 1) or DHPart2 (part 2) message. The
// length of the public value is checked against the key agreement later.
func ParseDHPart(msg []byte, part int) (*DHPart, error) {
	if part != 1 && part != 2 {
		return nil, fmt.Errorf("zrtp: DHPart%d does not exist", part)
	}
	if err := expectType(msg, dhPartType(part), dhPartFixedLen+4); err != nil {
		return nil, err
	}
	d := &DHPart{Part: part, raw: msg}
	copy(d.H1[:], msg[12:44])
	copy(d.RS1ID[:], msg[44:52])
	copy(d.RS2ID[:], msg[52:60])
	copy(d.AuxID[:], msg[60:68])
	copy(d.PBXID[:], msg[68:76])
	d.PV = msg[76 : len(msg)-macLen]
	copy(d.MAC[:], msg[len(msg)-macLen:])
	return d, nil
}
