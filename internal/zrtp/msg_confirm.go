package zrtp

import (
	"crypto/aes"
	"crypto/hmac"
	"encoding/binary"
	"fmt"
	"hash"
)

// Confirm is a Confirm1 or Confirm2 message (RFC 6189 §5.7). The fields
// after IV are encrypted on the wire with AES in full-block CFB mode and
// covered by ConfirmMAC.
type Confirm struct {
	Part       int // 1 or 2
	ConfirmMAC [8]byte
	IV         [16]byte
	Encrypted  []byte // the encrypted part as received

	// Decrypted fields.
	H0          [32]byte
	SigLen      int // in words, including the signature type block
	Flags       byte
	CacheExpiry uint32
	Signature   []byte // signature type block and signature, if any

	raw []byte
}

// Confirm flags (§5.7).
const (
	FlagDisclosure  = 1 << 0 // D
	FlagAllowClear  = 1 << 1 // A
	FlagSASVerified = 1 << 2 // V
	FlagPBXEnroll   = 1 << 3 // E
)

const confirmFixedLen = 76 // header 12, MAC 8, IV 16, H0 32, flags 4, expiry 4

func confirmType(part int) string {
	if part == 1 {
		return typeConfirm1
	}
	return typeConfirm2
}

// cfbXOR encrypts (decrypt=false) or decrypts src into dst with AES-CFB,
// 128-bit feedback, the final block truncated (§5.7, NIST SP 800-38A).
func cfbXOR(key, iv, dst, src []byte, decrypt bool) error {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return fmt.Errorf("zrtp: confirm cipher: %w", err)
	}
	var reg, ks [16]byte
	copy(reg[:], iv)
	for off := 0; off < len(src); off += 16 {
		blk.Encrypt(ks[:], reg[:])
		end := min(off+16, len(src))
		for i := off; i < end; i++ {
			c := src[i]
			dst[i] = c ^ ks[i-off]
			if decrypt {
				reg[i-off] = c
			} else {
				reg[i-off] = dst[i]
			}
		}
	}
	return nil
}

// encode encrypts the body with zrtpKey and computes confirm_mac with macKey
// using the negotiated hash.
func (c *Confirm) encode(newHash func() hash.Hash, zrtpKey, macKey []byte) ([]byte, error) {
	if len(c.Signature)%4 != 0 || len(c.Signature)/4 > 0x1ff {
		return nil, fmt.Errorf("zrtp: bad signature block length %d", len(c.Signature))
	}
	b := newMessage(confirmType(c.Part), confirmFixedLen+len(c.Signature))
	copy(b[20:36], c.IV[:])
	plain := make([]byte, len(b)-36)
	copy(plain[0:32], c.H0[:])
	sl := len(c.Signature) / 4
	plain[33] = byte(sl >> 8 & 1)
	plain[34] = byte(sl)
	plain[35] = c.Flags
	binary.BigEndian.PutUint32(plain[36:40], c.CacheExpiry)
	copy(plain[40:], c.Signature)
	if err := cfbXOR(zrtpKey, c.IV[:], b[36:], plain, false); err != nil {
		return nil, err
	}
	m := hmac.New(newHash, macKey)
	m.Write(b[36:])
	copy(b[12:20], m.Sum(nil)[:macLen])
	copy(c.ConfirmMAC[:], b[12:20])
	c.Encrypted = b[36:]
	c.raw = b
	return b, nil
}

// ParseConfirm parses the clear part of a Confirm1 (part 1) or Confirm2
// (part 2); call open to check the MAC and decrypt.
func ParseConfirm(msg []byte, part int) (*Confirm, error) {
	if part != 1 && part != 2 {
		return nil, fmt.Errorf("zrtp: Confirm%d does not exist", part)
	}
	if err := expectType(msg, confirmType(part), confirmFixedLen); err != nil {
		return nil, err
	}
	c := &Confirm{Part: part, raw: msg}
	copy(c.ConfirmMAC[:], msg[12:20])
	copy(c.IV[:], msg[20:36])
	c.Encrypted = msg[36:]
	return c, nil
}

// open checks confirm_mac and decrypts the body.
func (c *Confirm) open(newHash func() hash.Hash, zrtpKey, macKey []byte) error {
	m := hmac.New(newHash, macKey)
	m.Write(c.Encrypted)
	if !hmac.Equal(m.Sum(nil)[:macLen], c.ConfirmMAC[:]) {
		return &Error{Code: CodeBadConfirmMAC}
	}
	plain := make([]byte, len(c.Encrypted))
	if err := cfbXOR(zrtpKey, c.IV[:], plain, c.Encrypted, true); err != nil {
		return err
	}
	copy(c.H0[:], plain[0:32])
	c.SigLen = int(plain[33]&1)<<8 | int(plain[34])
	c.Flags = plain[35]
	c.CacheExpiry = binary.BigEndian.Uint32(plain[36:40])
	if 40+4*c.SigLen != len(plain) {
		return &Error{Code: CodeMalformed, Detail: fmt.Sprintf("Confirm signature length %d words does not fit %d bytes", c.SigLen, len(plain))}
	}
	c.Signature = plain[40:]
	return nil
}
