package filecrypt

import (
	"crypto"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

const labelContentKey = "phonex/v1/file/content\x00"

// Sender is the sending device.
type Sender struct {
	Device string // "user@domain/device"
	Cert   *x509.Certificate
	Signer crypto.Signer
}

// SlotUse is one recipient device's slot, opened, with the nonce2 the node
// released for it.
type SlotUse struct {
	Slot   *Slot
	Nonce2 []byte
}

// OwnDevice is another device of the sender that gets the file too.
type OwnDevice struct {
	Device string         // "user@domain/device"
	KEM    hpke.PublicKey // its message key, signature checked by the caller
}

// Outgoing is a file being sent: its header and metadata block, ready to
// upload, and the key for its content.
type Outgoing struct {
	Header   []byte
	Metadata []byte
	FileID   [FileIDSize]byte
	meta     Metadata
	key      []byte
}

// NewFile makes the file key, encrypts the metadata, wraps the key to each
// recipient slot and own device, and signs the header. meta.Size and
// meta.SHA256 must describe the content that ContentWriter will get
// (HashContent computes them).
func NewFile(from Sender, meta Metadata, to []SlotUse, own []OwnDevice, now time.Time) (*Outgoing, error) {
	if err := checkDevice(from.Device); err != nil {
		return nil, fmt.Errorf("new file: %w", err)
	}
	if len(to)+len(own) == 0 || len(to)+len(own) > maxWraps {
		return nil, fmt.Errorf("new file: %d recipient devices (1-%d): %w", len(to)+len(own), maxWraps, ErrMalformed)
	}
	if int64(meta.Size) < 0 {
		return nil, fmt.Errorf("new file: size %d: %w", meta.Size, ErrMalformed)
	}
	o := &Outgoing{meta: meta, key: make([]byte, fileKeySize)}
	rand.Read(o.key)
	rand.Read(o.FileID[:])
	mb, err := sealMetadata(o.key, o.FileID, &meta)
	if err != nil {
		return nil, fmt.Errorf("new file: %w", err)
	}
	h := &Header{
		FileID: o.FileID, Created: now.Truncate(time.Second).UTC(),
		Sender: from.Device, SenderCert: CertHash(from.Cert),
		Size: meta.Size, MetaSize: uint32(len(mb)), MetaHash: sha256.Sum256(mb),
	}
	h.core = h.encodeCore()
	ch := h.CoreHash()
	account := accountOf(from.Device)
	for _, u := range to {
		p := u.Slot.Public
		if p.Contact != account {
			return nil, fmt.Errorf("new file: slot made for %s: %w", p.Contact, ErrSlotBinding)
		}
		if !now.Before(p.Expires) {
			return nil, fmt.Errorf("new file: slot of %s: %w", p.Recipient, ErrSlotExpired)
		}
		if len(u.Nonce2) != slotNonceSize {
			return nil, fmt.Errorf("new file: nonce2 of %d bytes: %w", len(u.Nonce2), ErrMalformed)
		}
		w, err := wrapToSlot(from.Device, ch, u.Slot, u.Nonce2, o.key)
		if err != nil {
			return nil, fmt.Errorf("new file: wrap to %s: %w", p.Recipient, err)
		}
		h.Wraps = append(h.Wraps, *w)
	}
	for _, d := range own {
		if err := checkDevice(d.Device); err != nil || accountOf(d.Device) != account {
			return nil, fmt.Errorf("new file: %q is not a device of %s: %w", d.Device, account, ErrMalformed)
		}
		w, err := wrapToOwn(from.Device, ch, d, o.key)
		if err != nil {
			return nil, fmt.Errorf("new file: %w", err)
		}
		h.Wraps = append(h.Wraps, *w)
	}
	h.wraps = encodeWraps(h.Wraps)
	if h.SigAlg, h.Signature, err = sign(from.Signer, h.signedBytes()); err != nil {
		return nil, fmt.Errorf("new file: %w", err)
	}
	o.Header, _ = h.MarshalBinary()
	o.Metadata = mb
	if o.key, err = contentKey(o.key, h.FileID, ch); err != nil {
		return nil, err
	}
	return o, nil
}

// contentKey derives the STREAM key: HKDF-SHA256 with the file id as salt
// and the header core hash in the info, so the content is bound to the
// header that describes it.
func contentKey(fileKey []byte, id [FileIDSize]byte, coreHash []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, fileKey, id[:], labelContentKey+string(coreHash), 32)
}

// HashContent reads r to its end and returns its size and SHA-256, for
// Metadata.
func HashContent(r io.Reader) (uint64, [32]byte, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	var sum [32]byte
	h.Sum(sum[:0])
	return uint64(n), sum, err
}

// ContentWriter encrypts the content; Close fails with ErrSize when what was
// written is not what the metadata declared.
type ContentWriter struct {
	s    *StreamWriter
	h    hash.Hash
	n    uint64
	meta *Metadata
}

// ContentWriter returns the writer of the file's encrypted content to dst.
func (o *Outgoing) ContentWriter(dst io.Writer) (*ContentWriter, error) {
	s, err := NewStreamWriter(o.key, dst)
	if err != nil {
		return nil, err
	}
	return &ContentWriter{s: s, h: sha256.New(), meta: &o.meta}, nil
}

func (c *ContentWriter) Write(p []byte) (int, error) {
	if c.n+uint64(len(p)) > c.meta.Size {
		return 0, fmt.Errorf("content beyond its declared %d bytes: %w", c.meta.Size, ErrSize)
	}
	n, err := c.s.Write(p)
	c.h.Write(p[:n])
	c.n += uint64(n)
	return n, err
}

// Close writes the final chunk.
func (c *ContentWriter) Close() error {
	var sum [32]byte
	c.h.Sum(sum[:0])
	if c.n != c.meta.Size || !constantEqual(sum[:], c.meta.SHA256[:]) {
		return fmt.Errorf("content of %d bytes differs from its metadata: %w", c.n, ErrSize)
	}
	return c.s.Close()
}

// FileKey is an unwrapped file key with the verified header it belongs to.
type FileKey struct {
	h   *Header
	key []byte
}

var errUnverified = fmt.Errorf("header not verified: %w", ErrBadSignature)

// UnwrapSlot unwraps the file key for the device that made the slot s. The
// header must be verified. On success, destroy s once the content has been
// read and verified whole.
func (h *Header) UnwrapSlot(s *SlotSecret) (*FileKey, error) {
	if !h.verified {
		return nil, errUnverified
	}
	if s == nil || s.destroyed {
		return nil, fmt.Errorf("unwrap: %w", ErrSlotDestroyed)
	}
	w, err := h.wrapFor(s.Recipient, WrapSlot)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	if w.SlotID != s.ID {
		return nil, fmt.Errorf("unwrap: %w", ErrWrongSlot)
	}
	if accountOf(h.Sender) != s.Contact {
		return nil, fmt.Errorf("unwrap: slot made for %s, file from %s: %w", s.Contact, h.Sender, ErrSlotBinding)
	}
	if !h.Created.Before(s.Expires) {
		return nil, fmt.Errorf("unwrap: file made after the slot expired: %w", ErrSlotExpired)
	}
	fk, err := unwrapSlot(h.Sender, h.CoreHash(), s, w)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	return h.fileKey(fk)
}

// UnwrapOwn unwraps the file key for another device of the sender, me, with
// its message key. The header must be verified.
func (h *Header) UnwrapOwn(me string, k hpke.PrivateKey) (*FileKey, error) {
	if !h.verified {
		return nil, errUnverified
	}
	if accountOf(me) != accountOf(h.Sender) {
		return nil, fmt.Errorf("unwrap: %s is not a device of the sender: %w", me, ErrSlotBinding)
	}
	w, err := h.wrapFor(me, WrapOwn)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	fk, err := unwrapOwn(h.Sender, h.CoreHash(), me, k, w)
	if err != nil {
		return nil, fmt.Errorf("unwrap: %w", err)
	}
	return h.fileKey(fk)
}

func (h *Header) fileKey(fk []byte) (*FileKey, error) {
	if len(fk) != fileKeySize {
		return nil, fmt.Errorf("unwrap: %d-byte key: %w", len(fk), ErrUnwrap)
	}
	return &FileKey{h: h, key: fk}, nil
}

// OpenMetadata checks the encrypted metadata block against the header and
// decrypts it.
func (k *FileKey) OpenMetadata(block []byte) (*Metadata, error) {
	sum := sha256.Sum256(block)
	if uint32(len(block)) != k.h.MetaSize || !constantEqual(sum[:], k.h.MetaHash[:]) {
		return nil, fmt.Errorf("metadata block is not the one signed: %w", ErrMetadata)
	}
	mk, err := metaKey(k.key, k.h.FileID)
	if err != nil {
		return nil, err
	}
	pt, err := mustGCM(mk).Open(nil, make([]byte, nonceSize), block, metaAAD(k.h.FileID))
	if err != nil {
		return nil, ErrMetadata
	}
	m, err := ParseMetadata(pt)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if m.Size != k.h.Size {
		return nil, fmt.Errorf("metadata size %d, header %d: %w", m.Size, k.h.Size, ErrMetadata)
	}
	return m, nil
}

// ContentReader returns a reader of the decrypted content of src. It returns
// io.EOF only after the final chunk authenticated and the content matched
// the header's size and meta's SHA-256; a caller writes the file to its
// final path only then.
func (k *FileKey) ContentReader(src io.Reader, meta *Metadata) (io.Reader, error) {
	if meta == nil || meta.Size != k.h.Size {
		return nil, fmt.Errorf("content reader needs the file's opened metadata: %w", ErrMetadata)
	}
	ck, err := contentKey(k.key, k.h.FileID, k.h.CoreHash())
	if err != nil {
		return nil, err
	}
	s, err := NewStreamReader(ck, src, int64(k.h.Size))
	if err != nil {
		return nil, err
	}
	return &contentReader{s: s, h: sha256.New(), meta: meta}, nil
}

type contentReader struct {
	s    *StreamReader
	h    hash.Hash
	meta *Metadata
	err  error
}

func (c *contentReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.s.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		var sum [32]byte
		c.h.Sum(sum[:0])
		if !constantEqual(sum[:], c.meta.SHA256[:]) {
			c.err = fmt.Errorf("content hash differs from its metadata: %w", ErrSize)
			return n, c.err
		}
	}
	if err != nil {
		c.err = err
	}
	return n, err
}
