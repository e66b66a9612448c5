package zrtp

import (
	"crypto/mlkem"
	"encoding/binary"
	"fmt"
)

// Commit is the Commit message (RFC 6189 §5.4) in DH or Multistream form.
// For DH modes Hvi holds hvi; for Multistream the first 16 bytes hold the
// nonce. For the X2K7 hybrid, KEMKey carries the initiator's ML-KEM-768
// encapsulation key between hvi and the MAC (docs/zrtp-hybrid.md).
type Commit struct {
	H2           [32]byte
	ZID          ZID
	Hash         Algo
	Cipher       Algo
	AuthTag      Algo
	KeyAgreement Algo
	SAS          Algo
	Hvi          [32]byte // hvi, or the nonce in its first 16 bytes (Mult)
	KeyID        [8]byte  // Preshared mode only; parsed so it can be refused
	KEMKey       []byte
	MAC          [8]byte

	raw []byte
}

// Raw returns the message bytes exactly as received or encoded.
func (c *Commit) Raw() []byte { return c.raw }

// Nonce returns the Multistream nonce.
func (c *Commit) Nonce() []byte { return c.Hvi[:16] }

const (
	commitDHLen   = 29 * 4
	commitMultLen = 25 * 4
	commitPrshLen = 27 * 4
	commitHybLen  = commitDHLen + mlkem.EncapsulationKeySize768
)

func commitLen(ka Algo) int {
	switch ka {
	case Mult:
		return commitMultLen
	case Prsh:
		return commitPrshLen
	case X2K7:
		return commitHybLen
	}
	return commitDHLen
}

// encode builds the message and seals it with the implicit MAC keyed by H1.
func (c *Commit) encode(h1 []byte) []byte {
	b := newMessage(typeCommit, commitLen(c.KeyAgreement))
	copy(b[12:44], c.H2[:])
	copy(b[44:56], c.ZID[:])
	for i, a := range []Algo{c.Hash, c.Cipher, c.AuthTag, c.KeyAgreement, c.SAS} {
		binary.BigEndian.PutUint32(b[56+4*i:], uint32(a))
	}
	switch c.KeyAgreement {
	case Mult:
		copy(b[76:92], c.Hvi[:16])
	case Prsh:
		copy(b[76:92], c.Hvi[:16])
		copy(b[92:100], c.KeyID[:])
	default:
		copy(b[76:108], c.Hvi[:])
		copy(b[108:len(b)-macLen], c.KEMKey)
	}
	sealTrailingMAC(b, h1)
	copy(c.MAC[:], b[len(b)-macLen:])
	c.raw = b
	return b
}

// ParseCommit parses a Commit; its length must match its key agreement type.
func ParseCommit(msg []byte) (*Commit, error) {
	if err := expectType(msg, typeCommit, commitMultLen); err != nil {
		return nil, err
	}
	c := &Commit{raw: msg}
	copy(c.H2[:], msg[12:44])
	copy(c.ZID[:], msg[44:56])
	c.Hash = Algo(binary.BigEndian.Uint32(msg[56:]))
	c.Cipher = Algo(binary.BigEndian.Uint32(msg[60:]))
	c.AuthTag = Algo(binary.BigEndian.Uint32(msg[64:]))
	c.KeyAgreement = Algo(binary.BigEndian.Uint32(msg[68:]))
	c.SAS = Algo(binary.BigEndian.Uint32(msg[72:]))
	if want := commitLen(c.KeyAgreement); len(msg) != want {
		return nil, fmt.Errorf("%w: Commit %s of %d bytes, want %d", ErrMalformed, c.KeyAgreement, len(msg), want)
	}
	switch c.KeyAgreement {
	case Mult:
		copy(c.Hvi[:16], msg[76:92])
	case Prsh:
		copy(c.Hvi[:16], msg[76:92])
		copy(c.KeyID[:], msg[92:100])
	default:
		copy(c.Hvi[:], msg[76:108])
		if c.KeyAgreement == X2K7 {
			c.KEMKey = msg[108 : len(msg)-macLen]
		}
	}
	copy(c.MAC[:], msg[len(msg)-macLen:])
	return c, nil
}
