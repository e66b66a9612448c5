package zrtp

import (
	"crypto/hmac"
	"encoding/binary"
	"hash"
)

// KDF is the ZRTP key derivation function of RFC 6189 §4.5.1:
//
//	KDF(KI, Label, Context, L) = HMAC(KI, i || Label || 0x00 || Context || L)
//
// with i = 1 and L in bits, both 32-bit big-endian; the output is truncated
// to L bits.
func KDF(newHash func() hash.Hash, ki []byte, label string, context []byte, bits int) []byte {
	m := hmac.New(newHash, ki)
	var w [4]byte
	binary.BigEndian.PutUint32(w[:], 1)
	m.Write(w[:])
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(context)
	binary.BigEndian.PutUint32(w[:], uint32(bits))
	m.Write(w[:])
	out := m.Sum(nil)
	return out[:bits/8]
}

// kdfContext is ZIDi || ZIDr || total_hash (§4.4.1.4).
func kdfContext(zidi, zidr ZID, totalHash []byte) []byte {
	c := make([]byte, 0, 24+len(totalHash))
	c = append(c, zidi[:]...)
	c = append(c, zidr[:]...)
	return append(c, totalHash...)
}

// computeS0 is s0 in DH mode (§4.4.1.4):
//
//	s0 = hash(counter || DHResult || "ZRTP-HMAC-KDF" || ZIDi || ZIDr ||
//	          total_hash || len(s1) || s1 || len(s2) || s2 || len(s3) || s3)
//
// A null secret is passed as nil and contributes only its zero length.
func computeS0(newHash func() hash.Hash, dhResult []byte, zidi, zidr ZID, totalHash, s1, s2, s3 []byte) []byte {
	h := newHash()
	var w [4]byte
	binary.BigEndian.PutUint32(w[:], 1)
	h.Write(w[:])
	h.Write(dhResult)
	h.Write([]byte("ZRTP-HMAC-KDF"))
	h.Write(zidi[:])
	h.Write(zidr[:])
	h.Write(totalHash)
	for _, s := range [][]byte{s1, s2, s3} {
		binary.BigEndian.PutUint32(w[:], uint32(len(s)))
		h.Write(w[:])
		h.Write(s)
	}
	return h.Sum(nil)
}

// hashAll hashes the concatenation of parts with the negotiated hash.
func hashAll(newHash func() hash.Hash, parts ...[]byte) []byte {
	h := newHash()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// secretID is the 64-bit truncated negotiated MAC that names a shared secret
// in DHPart1/DHPart2 (§4.3.1), e.g. rs1IDr = MAC(rs1, "Responder").
func secretID(newHash func() hash.Hash, secret, data []byte) [8]byte {
	m := hmac.New(newHash, secret)
	m.Write(data)
	var id [8]byte
	copy(id[:], m.Sum(nil))
	return id
}

// keySet holds everything derived from s0 for one media stream (§4.5.2,
// §4.5.3, §4.6.1).
type keySet struct {
	srtpKeyI, srtpSaltI []byte
	srtpKeyR, srtpSaltR []byte
	macKeyI, macKeyR    []byte
	zrtpKeyI, zrtpKeyR  []byte
	sasHash             []byte // DH mode only
	session             []byte // ZRTPSess, DH mode only
	exported            []byte // ExportedKey, DH mode only
	rs1                 []byte // new retained secret, DH mode only
}

// deriveKeys derives the per-stream keys from s0. dhMode adds ZRTPSess, the
// SAS hash, the exported key and the new rs1, which Multistream mode must not
// compute.
func deriveKeys(h hashAlg, s0, ctx []byte, aesLen int, dhMode bool) *keySet {
	nh := h.new
	hl := h.size * 8
	k := &keySet{
		srtpKeyI:  KDF(nh, s0, "Initiator SRTP master key", ctx, aesLen*8),
		srtpSaltI: KDF(nh, s0, "Initiator SRTP master salt", ctx, 112),
		srtpKeyR:  KDF(nh, s0, "Responder SRTP master key", ctx, aesLen*8),
		srtpSaltR: KDF(nh, s0, "Responder SRTP master salt", ctx, 112),
		macKeyI:   KDF(nh, s0, "Initiator HMAC key", ctx, hl),
		macKeyR:   KDF(nh, s0, "Responder HMAC key", ctx, hl),
		zrtpKeyI:  KDF(nh, s0, "Initiator ZRTP key", ctx, aesLen*8),
		zrtpKeyR:  KDF(nh, s0, "Responder ZRTP key", ctx, aesLen*8),
	}
	if dhMode {
		k.session = KDF(nh, s0, "ZRTP Session Key", ctx, hl)
		k.sasHash = KDF(nh, s0, "SAS", ctx, 256)
		k.exported = KDF(nh, s0, "Exported key", ctx, hl)
		k.rs1 = KDF(nh, s0, "retained secret", ctx, 256)
	}
	return k
}

// multistreamS0 is s0 for a Multistream stream (§4.4.3.2):
// KDF(ZRTPSess, "ZRTP MSK", KDF_Context, negotiated hash length).
func multistreamS0(h hashAlg, session, ctx []byte) []byte {
	return KDF(h.new, session, "ZRTP MSK", ctx, h.size*8)
}
