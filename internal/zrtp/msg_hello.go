package zrtp

import (
	"encoding/binary"
	"fmt"
)

// Hello is the Hello message (RFC 6189 §5.2).
type Hello struct {
	Version       [4]byte
	ClientID      [16]byte
	H3            [32]byte
	ZID           ZID
	Signature     bool // S flag
	MiTM          bool // M flag
	Passive       bool // P flag
	Hashes        []Algo
	Ciphers       []Algo
	AuthTags      []Algo
	KeyAgreements []Algo
	SASTypes      []Algo
	MAC           [8]byte

	raw []byte // the message as received or sent; hashed in hvi and total_hash
}

// Raw returns the message bytes exactly as received or encoded.
func (h *Hello) Raw() []byte { return h.raw }

const helloFixedLen = 88 // header 12, version 4, cid 16, H3 32, ZID 12, flags 4, MAC 8

// encode builds the message and seals it with the implicit MAC keyed by H2.
func (h *Hello) encode(h2 []byte) ([]byte, error) {
	lists := [][]Algo{h.Hashes, h.Ciphers, h.AuthTags, h.KeyAgreements, h.SASTypes}
	n := 0
	for _, l := range lists {
		if len(l) > 7 {
			return nil, fmt.Errorf("zrtp: Hello lists at most 7 algorithms of a kind, got %d", len(l))
		}
		n += len(l)
	}
	b := newMessage(typeHello, helloFixedLen+4*n)
	copy(b[12:16], h.Version[:])
	copy(b[16:32], h.ClientID[:])
	copy(b[32:64], h.H3[:])
	copy(b[64:76], h.ZID[:])
	// |0|S|M|P| unused (8 bits) |hc|cc|ac|kc|sc| (§5.2)
	var flags uint32
	if h.Signature {
		flags |= 1 << 30
	}
	if h.MiTM {
		flags |= 1 << 29
	}
	if h.Passive {
		flags |= 1 << 28
	}
	flags |= uint32(len(h.Hashes))<<16 | uint32(len(h.Ciphers))<<12 | uint32(len(h.AuthTags))<<8 |
		uint32(len(h.KeyAgreements))<<4 | uint32(len(h.SASTypes))
	binary.BigEndian.PutUint32(b[76:80], flags)
	off := 80
	for _, l := range lists {
		for _, a := range l {
			binary.BigEndian.PutUint32(b[off:], uint32(a))
			off += 4
		}
	}
	sealTrailingMAC(b, h2)
	copy(h.MAC[:], b[len(b)-macLen:])
	h.raw = b
	return b, nil
}

// ParseHello parses a Hello message. The MAC is kept for a later check.
func ParseHello(msg []byte) (*Hello, error) {
	if err := expectType(msg, typeHello, helloFixedLen); err != nil {
		return nil, err
	}
	h := &Hello{raw: msg}
	copy(h.Version[:], msg[12:16])
	copy(h.ClientID[:], msg[16:32])
	copy(h.H3[:], msg[32:64])
	copy(h.ZID[:], msg[64:76])
	flags := binary.BigEndian.Uint32(msg[76:80])
	h.Signature = flags&(1<<30) != 0
	h.MiTM = flags&(1<<29) != 0
	h.Passive = flags&(1<<28) != 0
	counts := []int{int(flags>>16) & 0xf, int(flags>>12) & 0xf, int(flags>>8) & 0xf, int(flags>>4) & 0xf, int(flags) & 0xf}
	total := 0
	for _, c := range counts {
		if c > 7 {
			return nil, fmt.Errorf("%w: Hello algorithm count %d > 7", ErrMalformed, c)
		}
		total += c
	}
	if len(msg) != helloFixedLen+4*total {
		return nil, fmt.Errorf("%w: Hello of %d bytes lists %d algorithms", ErrMalformed, len(msg), total)
	}
	off := 80
	lists := make([][]Algo, 5)
	for i, c := range counts {
		for j := 0; j < c; j++ {
			lists[i] = append(lists[i], Algo(binary.BigEndian.Uint32(msg[off:])))
			off += 4
		}
	}
	h.Hashes, h.Ciphers, h.AuthTags, h.KeyAgreements, h.SASTypes = lists[0], lists[1], lists[2], lists[3], lists[4]
	copy(h.MAC[:], msg[len(msg)-macLen:])
	return h, nil
}
