// Package tlsrecord is TLS 1.3 record protection (RFC 8446 §5) for a
// connection whose handshake crypto/tls has done: it takes the application
// traffic secrets from the handshake and carries the connection from there
// on the raw socket, holding only keys and sequence numbers while idle.
package tlsrecord

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// suite is a TLS 1.3 cipher suite (RFC 8446 §B.4): an AEAD and the hash
// of the key schedule.
type suite struct {
	id      uint16
	keyLen  int
	hashLen int
	hash    func() hash.Hash
	aead    func(key []byte) (cipher.AEAD, error)
	// aes marks the AES-GCM suites, whose keys must be updated before
	// 2^24.5 full-size records (RFC 8446 §5.5).
	aes bool
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

var suites = []*suite{
	{id: tls.TLS_AES_128_GCM_SHA256, keyLen: 16, hashLen: 32, hash: sha256.New, aead: newAESGCM, aes: true},
	{id: tls.TLS_AES_256_GCM_SHA384, keyLen: 32, hashLen: 48, hash: sha512.New384, aead: newAESGCM, aes: true},
	{id: tls.TLS_CHACHA20_POLY1305_SHA256, keyLen: chacha20poly1305.KeySize, hashLen: 32, hash: sha256.New, aead: chacha20poly1305.New},
}

// ErrSuite is returned for a cipher suite that is not one of TLS 1.3's
// three AEAD suites this package implements.
var ErrSuite = errors.New("tlsrecord: unsupported cipher suite")

func suiteByID(id uint16) (*suite, error) {
	for _, s := range suites {
		if s.id == id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w %#04x", ErrSuite, id)
}

// ivLen is the per-record nonce length of all three suites (RFC 8446 §5.3:
// iv_length is max(8, N_MIN), 12 for these AEADs).
const ivLen = 12

// expandLabel is HKDF-Expand-Label (RFC 8446 §7.1):
//
//	struct {
//	    uint16 length = Length;
//	    opaque label<7..255> = "tls13 " + Label;
//	    opaque context<0..255> = Context;
//	} HkdfLabel;
func expandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) []byte {
	info := make([]byte, 0, 2+1+6+len(label)+1+len(context))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	out, err := hkdf.Expand(h, secret, string(info), length)
	if err != nil {
		// Only a length over 255 hash lengths fails, and ours are fixed
		// and small.
		panic("tlsrecord: " + err.Error())
	}
	return out
}

// half is one direction's protection: the traffic secret of the current
// generation, the key and IV derived from it, and the sequence number.
// The AEAD state is made from key when a record is protected or opened
// and not kept, so an idle connection holds only these bytes.
type half struct {
	s      *suite
	secret [48]byte // the first s.hash().Size() bytes
	key    [32]byte // the first s.keyLen bytes
	iv     [ivLen]byte
	seq    uint64
}

func (h *half) secretLen() int { return h.s.hashLen }

// set installs a traffic secret and derives its key and IV (RFC 8446 §7.3:
// [sender]_write_key = HKDF-Expand-Label(Secret, "key", "", key_length),
// [sender]_write_iv = HKDF-Expand-Label(Secret, "iv", "", iv_length)),
// and starts the sequence number at 0 (§5.3).
func (h *half) set(s *suite, secret []byte) {
	h.s = s
	clear(h.secret[:])
	copy(h.secret[:], secret)
	key := expandLabel(s.hash, secret, "key", nil, s.keyLen)
	iv := expandLabel(s.hash, secret, "iv", nil, ivLen)
	clear(h.key[:])
	copy(h.key[:], key)
	copy(h.iv[:], iv)
	clear(key)
	clear(iv)
	h.seq = 0
}

// update moves to the next generation of traffic secret (RFC 8446 §7.2:
// application_traffic_secret_N+1 = HKDF-Expand-Label(
// application_traffic_secret_N, "traffic upd", "", Hash.length)).
func (h *half) update() {
	n := h.secretLen()
	next := expandLabel(h.s.hash, h.secret[:n], "traffic upd", nil, n)
	h.set(h.s, next)
	clear(next)
}

// aead makes the AEAD state for the current key.
func (h *half) aead() (cipher.AEAD, error) {
	return h.s.aead(h.key[:h.s.keyLen])
}

// nonce is the per-record nonce (RFC 8446 §5.3): the 64-bit sequence
// number in network byte order, left-padded with zeros to iv_length, XORed
// with the static IV.
func (h *half) nonce(n *[ivLen]byte) {
	*n = h.iv
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], h.seq)
	for i := range seq {
		n[ivLen-8+i] ^= seq[i]
	}
}

// wipe zeros the key material.
func (h *half) wipe() {
	clear(h.secret[:])
	clear(h.key[:])
	clear(h.iv[:])
}
