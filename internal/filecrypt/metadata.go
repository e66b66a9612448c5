package filecrypt

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"time"
)

// The metadata block is encrypted apart from the content, so a recipient
// reads it before downloading. It is padded to a multiple of metaPad bytes
// so its length says little about the name.
const (
	metaVersion  = 1
	metaPad      = 256
	maxNameSize  = 1024
	maxTypeSize  = 255
	labelMetaKey = "phonex/v1/file/metadata\x00"
	metaAADMagic = "PXFM"
)

// Metadata describes the content.
type Metadata struct {
	Name   string // file name, no directory
	Size   uint64 // content bytes
	Type   string // media type, e.g. "audio/ogg"
	SHA256 [32]byte
	// Duration of a voice message; zero for other files (milliseconds on
	// the wire).
	Duration time.Duration
}

// MarshalBinary encodes the plaintext metadata block.
func (m *Metadata) MarshalBinary() ([]byte, error) {
	if len(m.Name) > maxNameSize || len(m.Type) > maxTypeSize {
		return nil, fmt.Errorf("metadata: name or type too long: %w", ErrMalformed)
	}
	ms := m.Duration.Milliseconds()
	if ms < 0 || ms > 1<<32-1 {
		return nil, fmt.Errorf("metadata: duration %v: %w", m.Duration, ErrMalformed)
	}
	var w writer
	w.u8(metaVersion)
	w.str(m.Name)
	w.u64(m.Size)
	w.str(m.Type)
	w.fixed(m.SHA256[:])
	w.u32(uint32(ms))
	pad := (metaPad - (len(w.b)+2)%metaPad) % metaPad
	w.vec(make([]byte, pad))
	return w.b, nil
}

// ParseMetadata decodes a plaintext metadata block.
func ParseMetadata(b []byte) (*Metadata, error) {
	if len(b)%metaPad != 0 {
		return nil, fmt.Errorf("metadata of %d bytes is not padded to %d: %w", len(b), metaPad, ErrMalformed)
	}
	r := reader{b: b}
	if v := r.u8("metadata version"); r.err == nil && v != metaVersion {
		return nil, fmt.Errorf("metadata version %d: %w", v, ErrVersion)
	}
	m := &Metadata{}
	m.Name = r.str(maxNameSize, "name")
	m.Size = r.u64("size")
	m.Type = r.str(maxTypeSize, "type")
	copy(m.SHA256[:], r.take(32, "sha256"))
	m.Duration = time.Duration(r.u32("duration")) * time.Millisecond
	pad := r.vec(metaPad, "padding")
	if err := r.end("metadata"); err != nil {
		return nil, err
	}
	for _, c := range pad {
		if c != 0 {
			return nil, fmt.Errorf("metadata padding not zero: %w", ErrMalformed)
		}
	}
	return m, nil
}

func metaKey(fileKey []byte, id [FileIDSize]byte) ([]byte, error) {
	return hkdf.Key(sha256.New, fileKey, id[:], labelMetaKey, 32)
}

func metaAAD(id [FileIDSize]byte) []byte {
	return append([]byte(metaAADMagic+"\x01"), id[:]...)
}

// sealMetadata encrypts the block with AES-256-GCM under a key used for this
// one block (zero nonce).
func sealMetadata(fileKey []byte, id [FileIDSize]byte, m *Metadata) ([]byte, error) {
	pt, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	k, err := metaKey(fileKey, id)
	if err != nil {
		return nil, err
	}
	return mustGCM(k).Seal(nil, make([]byte, nonceSize), pt, metaAAD(id)), nil
}
