package ratchet

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"encoding/binary"
	"fmt"
)

// Prekey bundle encoding, version 1 (integers big-endian):
//
//	version    1 byte    = 1
//	flags      1 byte    bit 0: one-time prekey present; bit 1: the ML-KEM
//	                     prekey is the last-resort one; other bits zero
//	IK         130 bytes Encode(IK)
//	SPK id     4 bytes, EncodeEC(SPK) 33 bytes, signature 64 bytes
//	[OPK id    4 bytes, EncodeEC(OPK) 33 bytes]
//	PQPK id    4 bytes, EncodeKEM(PQPK) 1185 bytes, signature 64 bytes
const (
	bundleVersion        = 1
	bundleFlagOneTime    = 0x01
	bundleFlagLastResort = 0x02
	kemEncodedSize       = 1 + mlkem.EncapsulationKeySize768
)

// MarshalBinary encodes the bundle for the key service.
func (b *PrekeyBundle) MarshalBinary() ([]byte, error) {
	if b.SignedPrekey == nil || b.PQPrekey == nil || b.Identity.DH == nil ||
		len(b.Identity.Signing) != ed25519.PublicKeySize || len(b.Identity.Binding) != ed25519.SignatureSize ||
		len(b.SignedPrekeySig) != ed25519.SignatureSize || len(b.PQPrekeySig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("prekey bundle incomplete: %w", ErrMalformed)
	}
	var flags byte
	if b.OneTimePrekey != nil {
		flags |= bundleFlagOneTime
	}
	if b.PQPrekeyLastResort {
		flags |= bundleFlagLastResort
	}
	out := []byte{bundleVersion, flags}
	out = append(out, b.Identity.Encode()...)
	out = binary.BigEndian.AppendUint32(out, b.SignedPrekeyID)
	out = append(out, encodeEC(b.SignedPrekey.Bytes())...)
	out = append(out, b.SignedPrekeySig...)
	if b.OneTimePrekey != nil {
		out = binary.BigEndian.AppendUint32(out, b.OneTimePrekeyID)
		out = append(out, encodeEC(b.OneTimePrekey.Bytes())...)
	}
	out = binary.BigEndian.AppendUint32(out, b.PQPrekeyID)
	out = append(out, encodeKEM(b.PQPrekey)...)
	return append(out, b.PQPrekeySig...), nil
}

func decodeEC(p []byte) (*ecdh.PublicKey, error) {
	if len(p) != ecEncodedSize || p[0] != typeX25519 {
		return nil, ErrMalformed
	}
	k, err := ecdh.X25519().NewPublicKey(p[1:])
	if err != nil {
		return nil, ErrMalformed
	}
	return k, nil
}

// ParsePrekeyBundle decodes a bundle. It checks structure only; call Verify
// (InitiateSession does) before use.
func ParsePrekeyBundle(data []byte) (*PrekeyBundle, error) {
	r := &reader{b: data}
	if v := r.u8(); r.bad || v != bundleVersion {
		if r.bad {
			return nil, fmt.Errorf("prekey bundle: %w", ErrMalformed)
		}
		return nil, fmt.Errorf("prekey bundle version %d: %w", v, ErrVersion)
	}
	flags := r.u8()
	if flags&^(bundleFlagOneTime|bundleFlagLastResort) != 0 {
		return nil, fmt.Errorf("prekey bundle flags %#x: %w", flags, ErrMalformed)
	}
	b := &PrekeyBundle{PQPrekeyLastResort: flags&bundleFlagLastResort != 0}
	ik, err := parseIdentityKey(r.take(identityEncodedSize))
	if err != nil {
		return nil, fmt.Errorf("prekey bundle: %w", err)
	}
	b.Identity = ik
	b.SignedPrekeyID = r.u32()
	if b.SignedPrekey, err = decodeEC(r.take(ecEncodedSize)); err != nil {
		return nil, fmt.Errorf("prekey bundle: signed prekey: %w", err)
	}
	b.SignedPrekeySig = append([]byte(nil), r.take(ed25519.SignatureSize)...)
	if flags&bundleFlagOneTime != 0 {
		b.OneTimePrekeyID = r.u32()
		if b.OneTimePrekey, err = decodeEC(r.take(ecEncodedSize)); err != nil {
			return nil, fmt.Errorf("prekey bundle: one-time prekey: %w", err)
		}
	}
	b.PQPrekeyID = r.u32()
	kem := r.take(kemEncodedSize)
	if r.bad || kem[0] != typeMLKEM768 {
		return nil, fmt.Errorf("prekey bundle: pq prekey: %w", ErrMalformed)
	}
	if b.PQPrekey, err = mlkem.NewEncapsulationKey768(kem[1:]); err != nil {
		return nil, fmt.Errorf("prekey bundle: pq prekey: %w", ErrMalformed)
	}
	b.PQPrekeySig = append([]byte(nil), r.take(ed25519.SignatureSize)...)
	if r.bad || len(r.b) != 0 {
		return nil, fmt.Errorf("prekey bundle: %w", ErrMalformed)
	}
	return b, nil
}
