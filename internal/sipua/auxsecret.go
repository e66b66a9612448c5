package sipua

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
)

// auxLabel separates this hash from every other use of the keys.
const auxLabel = "PhoneX ZRTP auxsecret v1: messaging identities"

// MessagingAuxSecret is the ZRTP auxsecret of a call between two PhoneX
// devices (RFC 6189 §4.3): a hash of both devices' certified messaging
// identity keys, each given as the encoding MessagingIdentity makes, in
// bytewise order so that both ends compute the same value.
//
// It is not secret (the keys are public): it binds. ZRTP compares its
// hash in DHPart (§5.5) and mixes it into s0 only when both ends hold the
// same value, so the SAS then commits to both messaging identities: when
// the users find the SAS equal, each end's pinned key of the other is the
// key the other uses itself, as Linphone's lime links call and message
// verification (seed 002). A different view of either key shows as an
// auxsecret mismatch, which is reported, not fatal (§4.3).
func MessagingAuxSecret(a, b []byte) []byte {
	if bytes.Compare(a, b) > 0 {
		a, b = b, a
	}
	h := sha256.New()
	h.Write([]byte(auxLabel))
	for _, k := range [][]byte{a, b} {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k))))
		h.Write(k)
	}
	return h.Sum(nil)
}

// MessagingIdentity encodes a device's messaging identity for
// MessagingAuxSecret: the SubjectPublicKeyInfo of its signing certificate
// (Ed25519 or RSA) and of its key-agreement certificate (X25519 or RSA),
// each with a 32-bit length.
func MessagingIdentity(signSPKI, kexSPKI []byte) []byte {
	var b []byte
	for _, k := range [][]byte{signSPKI, kexSPKI} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(k)))
		b = append(b, k...)
	}
	return b
}
