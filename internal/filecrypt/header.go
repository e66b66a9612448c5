package filecrypt

import (
	"crypto/mlkem"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"
)

// File header wire format (docs/files.md): the core, then the wrapped keys,
// then the sender's signature over a label, the core and the wrapped keys.
const (
	headerMagic   = "PXFH"
	headerVersion = 1
	// AEADStream64K names the content encryption: STREAM with AES-256-GCM and
	// 64 KiB chunks (stream.go).
	AEADStream64K = 1
	// FileIDSize is the size of a file id.
	FileIDSize = 16
	maxWraps   = 64
	// maxMetaSize bounds the encrypted metadata block.
	maxMetaSize = 16 << 10
)

var (
	labelHeaderCore = []byte("phonex/v1/file/header-core\x00")
	labelHeaderSig  = []byte("phonex/v1/file/header-sig\x00")
)

// Header describes one encrypted file. Verify it before any other use.
type Header struct {
	FileID     [FileIDSize]byte
	Created    time.Time
	Sender     string   // the sending device, "user@domain/device"
	SenderCert [32]byte // CertHash of its certificate
	Size       uint64   // content (plaintext) bytes
	MetaSize   uint32   // bytes of the encrypted metadata block
	MetaHash   [32]byte // SHA-256 of the encrypted metadata block
	Wraps      []Wrap
	SigAlg     byte
	Signature  []byte

	core     []byte
	wraps    []byte
	verified bool
}

func (h *Header) encodeCore() []byte {
	var w writer
	w.fixed([]byte(headerMagic))
	w.u8(headerVersion)
	w.u8(AEADStream64K)
	w.fixed(h.FileID[:])
	w.u64(uint64(h.Created.Unix()))
	w.str(h.Sender)
	w.fixed(h.SenderCert[:])
	w.u64(h.Size)
	w.u32(ChunkSize)
	w.u32(h.MetaSize)
	w.fixed(h.MetaHash[:])
	return w.b
}

func encodeWraps(ws []Wrap) []byte {
	var w writer
	w.u8(byte(len(ws)))
	for _, x := range ws {
		w.u8(x.Kind)
		w.str(x.Device)
		switch x.Kind {
		case WrapSlot:
			w.fixed(x.SlotID[:])
			w.fixed(x.Ephemeral)
			w.fixed(x.KEMCiphertext)
			w.fixed(x.Sealed)
		case WrapOwn:
			w.fixed(x.Sealed)
		}
	}
	return w.b
}

// CoreHash is the hash of the header's core (everything before the wrapped
// keys); wrapped keys and the content key are bound to it.
func (h *Header) CoreHash() []byte {
	s := sha256.New()
	s.Write(labelHeaderCore)
	s.Write(h.core)
	return s.Sum(nil)
}

func (h *Header) signedBytes() []byte {
	b := append(append([]byte(nil), labelHeaderSig...), h.core...)
	return append(b, h.wraps...)
}

// MarshalBinary returns the header's wire bytes.
func (h *Header) MarshalBinary() ([]byte, error) {
	var w writer
	w.fixed(h.core)
	w.fixed(h.wraps)
	w.u8(h.SigAlg)
	w.vec(h.Signature)
	return w.b, nil
}

// ParseHeader decodes a header. It checks the form only; Verify checks the
// signature.
func ParseHeader(b []byte) (*Header, error) {
	r := reader{b: b}
	if m := r.take(4, "magic"); r.err == nil && string(m) != headerMagic {
		return nil, fmt.Errorf("not a file header: %w", ErrMalformed)
	}
	if v := r.u8("version"); r.err == nil && v != headerVersion {
		return nil, fmt.Errorf("header version %d: %w", v, ErrVersion)
	}
	if v := r.u8("aead"); r.err == nil && v != AEADStream64K {
		return nil, fmt.Errorf("content encryption %d: %w", v, ErrVersion)
	}
	h := &Header{}
	copy(h.FileID[:], r.take(FileIDSize, "file id"))
	h.Created = time.Unix(int64(r.u64("created")), 0).UTC()
	h.Sender = r.str(maxIdentity, "sender")
	copy(h.SenderCert[:], r.take(32, "sender certificate hash"))
	h.Size = r.u64("size")
	if cs := r.u32("chunk size"); r.err == nil && cs != ChunkSize {
		return nil, fmt.Errorf("chunk size %d: %w", cs, ErrVersion)
	}
	h.MetaSize = r.u32("metadata size")
	copy(h.MetaHash[:], r.take(32, "metadata hash"))
	if r.err != nil {
		return nil, r.err
	}
	h.core = append([]byte(nil), b[:len(b)-len(r.b)]...)
	wrapStart := len(b) - len(r.b)
	n := int(r.u8("wrap count"))
	if r.err == nil && (n == 0 || n > maxWraps) {
		r.fail("wrap count %d", n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		var x Wrap
		x.Kind = r.u8("wrap kind")
		x.Device = r.str(maxIdentity, "wrap device")
		switch x.Kind {
		case WrapSlot:
			copy(x.SlotID[:], r.take(SlotIDSize, "slot id"))
			x.Ephemeral = r.fixed(x25519Size, "ephemeral key")
			x.KEMCiphertext = r.fixed(mlkem.CiphertextSize768, "ml-kem ciphertext")
			x.Sealed = r.fixed(wrappedSize, "wrapped key")
		case WrapOwn:
			x.Sealed = r.fixed(ownWrappedSize, "wrapped key")
		default:
			if r.err == nil {
				return nil, fmt.Errorf("wrap kind %d: %w", x.Kind, ErrVersion)
			}
		}
		if r.err == nil {
			if err := checkDevice(x.Device); err != nil {
				return nil, fmt.Errorf("wrap %d: %w", i, err)
			}
		}
		h.Wraps = append(h.Wraps, x)
	}
	if r.err != nil {
		return nil, r.err
	}
	h.wraps = append([]byte(nil), b[wrapStart:len(b)-len(r.b)]...)
	h.SigAlg = r.u8("signature algorithm")
	h.Signature = r.vec(maxSigSize, "signature")
	if err := r.end("header"); err != nil {
		return nil, err
	}
	if err := checkDevice(h.Sender); err != nil {
		return nil, fmt.Errorf("header sender: %w", err)
	}
	if h.MetaSize > maxMetaSize {
		return nil, fmt.Errorf("metadata of %d bytes: %w", h.MetaSize, ErrMalformed)
	}
	return h, nil
}

// Verify checks the sender's signature with its certificate, which the
// caller has verified against the sender's CA and pinned.
func (h *Header) Verify(senderCert *x509.Certificate) error {
	if err := verifySigned(senderCert, h.Sender, h.SenderCert, h.SigAlg, h.signedBytes(), h.Signature); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	h.verified = true
	return nil
}

// wrapFor finds the wrapped key of device.
func (h *Header) wrapFor(device string, kind byte) (*Wrap, error) {
	for i := range h.Wraps {
		if h.Wraps[i].Device == device && h.Wraps[i].Kind == kind {
			return &h.Wraps[i], nil
		}
	}
	return nil, fmt.Errorf("%s: %w", device, ErrNotForMe)
}
