package ratchet

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// Serialised session state, version 1 (all integers big-endian):
//
//	magic       4 bytes  "PXRS"
//	version     1 byte   = 1
//	flags       1 byte   bit 0 DHr, bit 1 CKs, bit 2 CKr present
//	maxSkip     4 bytes
//	maxSkipped  4 bytes
//	ad          2-byte length, bytes
//	RK          32 bytes
//	DHs         32 bytes private scalar
//	DHr         32 bytes (zero when absent)
//	CKs, CKr    32 bytes each (zero when absent)
//	Ns, Nr, PN  4 bytes each
//	base key    32 bytes
//	initial     2-byte length, bytes
//	recent      1-byte count (≤ 8), 32 bytes each
//	skipped     4-byte count (≤ maxSkipped), each DH (32) | N (4) | MK (32)
//
// The bytes hold secret keys: store them only encrypted.
const (
	stateMagic   = "PXRS"
	stateVersion = 1

	stateHasDHr = 0x01
	stateHasCKs = 0x02
	stateHasCKr = 0x04

	skippedEntrySize = 32 + 4 + keySize
	// maxStateSkipped bounds what a decoder accepts regardless of the
	// bound the state declares.
	maxStateSkipped = 1 << 20
)

// MarshalBinary serialises the session.
func (s *Session) MarshalBinary() ([]byte, error) {
	st := &s.st
	if st.dhs == nil {
		return nil, fmt.Errorf("marshal session: no ratchet key: %w", ErrMalformed)
	}
	if len(st.ad) > 0xFFFF || len(st.initial) > 0xFFFF {
		return nil, fmt.Errorf("marshal session: field too long: %w", ErrMalformed)
	}
	out := make([]byte, 0, 256+len(st.ad)+len(st.initial)+len(st.recent)*32+len(st.skipped)*skippedEntrySize)
	out = append(out, stateMagic...)
	out = append(out, stateVersion)
	var flags byte
	if st.hasDHr {
		flags |= stateHasDHr
	}
	if st.hasCKs {
		flags |= stateHasCKs
	}
	if st.hasCKr {
		flags |= stateHasCKr
	}
	out = append(out, flags)
	out = binary.BigEndian.AppendUint32(out, st.maxSkip)
	out = binary.BigEndian.AppendUint32(out, st.maxSkipped)
	out = binary.BigEndian.AppendUint16(out, uint16(len(st.ad)))
	out = append(out, st.ad...)
	out = append(out, st.rk[:]...)
	out = append(out, st.dhs.Bytes()...)
	out = append(out, st.dhr[:]...)
	out = append(out, st.cks[:]...)
	out = append(out, st.ckr[:]...)
	out = binary.BigEndian.AppendUint32(out, st.ns)
	out = binary.BigEndian.AppendUint32(out, st.nr)
	out = binary.BigEndian.AppendUint32(out, st.pn)
	out = append(out, st.baseKey[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(st.initial)))
	out = append(out, st.initial...)
	out = append(out, byte(len(st.recent)))
	for _, r := range st.recent {
		out = append(out, r[:]...)
	}
	out = binary.BigEndian.AppendUint32(out, uint32(len(st.skipped)))
	for _, k := range st.skipped {
		out = append(out, k.dh[:]...)
		out = binary.BigEndian.AppendUint32(out, k.n)
		out = append(out, k.mk[:]...)
	}
	return out, nil
}

// reader is a bounds-checked cursor over serialised bytes.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return make([]byte, max(n, 0))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte    { return r.take(1)[0] }
func (r *reader) u16() int    { return int(binary.BigEndian.Uint16(r.take(2))) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.take(4)) }
func (r *reader) key() (k [32]byte) {
	copy(k[:], r.take(32))
	return k
}

// UnmarshalBinary restores a session serialised by MarshalBinary. The
// restored session draws randomness from crypto/rand until SetRand.
func (s *Session) UnmarshalBinary(data []byte) error {
	st, err := parseState(data)
	if err != nil {
		return fmt.Errorf("unmarshal session: %w", err)
	}
	s.st = *st
	if s.rand == nil {
		s.rand = rand.Reader
	}
	return nil
}

func parseState(data []byte) (*state, error) {
	r := &reader{b: data}
	if string(r.take(4)) != stateMagic {
		return nil, ErrMalformed
	}
	if v := r.u8(); v != stateVersion {
		if r.bad {
			return nil, ErrMalformed
		}
		return nil, fmt.Errorf("state version %d: %w", v, ErrVersion)
	}
	flags := r.u8()
	if flags&^(stateHasDHr|stateHasCKs|stateHasCKr) != 0 {
		return nil, fmt.Errorf("state flags %#x: %w", flags, ErrMalformed)
	}
	st := &state{
		hasDHr: flags&stateHasDHr != 0,
		hasCKs: flags&stateHasCKs != 0,
		hasCKr: flags&stateHasCKr != 0,
	}
	st.maxSkip = r.u32()
	st.maxSkipped = r.u32()
	st.ad = append([]byte(nil), r.take(r.u16())...)
	st.rk = r.key()
	dhs := r.key()
	st.dhr = r.key()
	st.cks = r.key()
	st.ckr = r.key()
	st.ns, st.nr, st.pn = r.u32(), r.u32(), r.u32()
	st.baseKey = r.key()
	if n := r.u16(); n > 0 {
		st.initial = append([]byte(nil), r.take(n)...)
	}
	nRecent := int(r.u8())
	if nRecent > recentChains {
		return nil, fmt.Errorf("%d recent chains: %w", nRecent, ErrMalformed)
	}
	for range nRecent {
		st.recent = append(st.recent, r.key())
	}
	nSkipped := r.u32()
	if r.bad {
		return nil, ErrMalformed
	}
	if st.maxSkip == 0 || st.maxSkipped == 0 || nSkipped > st.maxSkipped || nSkipped > maxStateSkipped ||
		uint64(len(r.b)) != uint64(nSkipped)*skippedEntrySize {
		return nil, fmt.Errorf("skipped keys: %w", ErrMalformed)
	}
	st.skipped = make([]skippedKey, nSkipped)
	for i := range st.skipped {
		st.skipped[i].dh = r.key()
		st.skipped[i].n = r.u32()
		st.skipped[i].mk = r.key()
	}
	if r.bad || len(r.b) != 0 {
		return nil, ErrMalformed
	}
	if st.hasCKr && !st.hasDHr {
		return nil, fmt.Errorf("receiving chain without ratchet key: %w", ErrMalformed)
	}
	if st.initial != nil {
		if _, err := ParseInitialMessage(st.initial); err != nil {
			return nil, fmt.Errorf("pending initial message: %w", err)
		}
	}
	k, err := ecdh.X25519().NewPrivateKey(dhs[:])
	if err != nil {
		return nil, fmt.Errorf("ratchet key: %w", ErrMalformed)
	}
	st.dhs = k
	return st, nil
}
