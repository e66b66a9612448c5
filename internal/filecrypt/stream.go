package filecrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
// Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO
// 2015, §7), instantiated as age does: the content is cut into ChunkSize
// chunks, each sealed with AES-256-GCM under one per-file key with the
// nonce counter(11 bytes, big-endian) || flag(1 byte), the flag 0x01 on the
// final chunk only. Every chunk but the final one is full; the final chunk
// may be short, and is empty only when the whole content is empty. A chunk
// moved to another position, a missing final chunk and bytes after it all
// fail authentication, since the position and the end are in the nonce.
//
// AES-256-GCM rather than ChaCha20-Poly1305: the nodes and devices this
// targets have AES-NI and carry-less multiply, where Go's GCM is about three
// times faster than ChaCha20-Poly1305, and the random per-file key keeps
// the 96-bit nonce space private to one file.
const (
	// ChunkSize is the plaintext size of every chunk but the last.
	ChunkSize = 64 << 10
	tagSize   = 16
	// encChunkSize is the size of a full chunk on the wire.
	encChunkSize = ChunkSize + tagSize
	nonceSize    = 12
	lastFlag     = 0x01
	// reorderWindow bounds how many other positions a failed chunk is tried
	// at to tell a reordered file from an altered one; it is spent only on
	// failure and bounds an attacker's extra work to 2*reorderWindow opens.
	reorderWindow = 8
)

// EncryptedSize is the size of the STREAM ciphertext of size plaintext bytes.
func EncryptedSize(size int64) int64 {
	chunks := (size + ChunkSize - 1) / ChunkSize
	if chunks == 0 {
		chunks = 1
	}
	return size + chunks*tagSize
}

func newStreamAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("stream key: %d bytes, want 32: %w", len(key), ErrMalformed)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("stream key: %w", err)
	}
	return cipher.NewGCM(b)
}

// streamNonce writes the chunk nonce. A uint64 counter fills the low 8 of
// the 11 counter bytes: 2^64 chunks of 64 KiB cannot occur.
func streamNonce(n *[nonceSize]byte, counter uint64, last bool) {
	n[0], n[1], n[2] = 0, 0, 0
	binary.BigEndian.PutUint64(n[3:11], counter)
	n[11] = 0
	if last {
		n[11] = lastFlag
	}
}

// StreamWriter encrypts a content stream. Close must be called to write the
// final chunk; a stream that was not closed is truncated for a reader.
type StreamWriter struct {
	aead    cipher.AEAD
	dst     io.Writer
	buf     []byte // plaintext of the pending chunk
	out     []byte // ciphertext scratch
	nonce   [nonceSize]byte
	counter uint64
	err     error
}

// NewStreamWriter returns a writer that seals what it is given to dst with
// the 32-byte key. The key must be used for one stream only.
func NewStreamWriter(key []byte, dst io.Writer) (*StreamWriter, error) {
	a, err := newStreamAEAD(key)
	if err != nil {
		return nil, err
	}
	return &StreamWriter{
		aead: a, dst: dst,
		buf: make([]byte, 0, ChunkSize),
		out: make([]byte, 0, encChunkSize),
	}, nil
}

// Write buffers p and seals every chunk known not to be the last.
func (w *StreamWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		// A full buffer is sealed only once more data shows it is not last.
		if len(w.buf) == ChunkSize {
			if err := w.flush(false); err != nil {
				return n, err
			}
		}
		// A whole chunk of p with more after it is sealed in place, without
		// the copy into buf.
		if len(w.buf) == 0 && len(p) > ChunkSize {
			if err := w.seal(p[:ChunkSize], false); err != nil {
				return n, err
			}
			p = p[ChunkSize:]
			n += ChunkSize
			continue
		}
		k := copy(w.buf[len(w.buf):ChunkSize], p)
		w.buf = w.buf[:len(w.buf)+k]
		p = p[k:]
		n += k
	}
	return n, nil
}

// Close seals the final chunk. It does not close dst.
func (w *StreamWriter) Close() error {
	if w.err != nil {
		if errors.Is(w.err, errWriterClosed) {
			return nil
		}
		return w.err
	}
	if err := w.flush(true); err != nil {
		return err
	}
	w.err = errWriterClosed
	return nil
}

var errWriterClosed = errors.New("filecrypt: stream writer closed")

func (w *StreamWriter) flush(last bool) error {
	if err := w.seal(w.buf, last); err != nil {
		return err
	}
	w.buf = w.buf[:0]
	return nil
}

func (w *StreamWriter) seal(pt []byte, last bool) error {
	streamNonce(&w.nonce, w.counter, last)
	w.out = w.aead.Seal(w.out[:0], w.nonce[:], pt, nil)
	if _, err := w.dst.Write(w.out); err != nil {
		w.err = fmt.Errorf("write chunk %d: %w", w.counter, err)
		return w.err
	}
	w.counter++
	return nil
}

// StreamReader decrypts and authenticates a content stream chunk by chunk;
// it never returns plaintext of a chunk that did not authenticate, and
// reports io.EOF only after the final chunk authenticated.
type StreamReader struct {
	aead    cipher.AEAD
	src     io.Reader
	buf     []byte // encChunkSize+1: a full chunk and one byte of look-ahead
	pending int    // look-ahead bytes already at buf[0]
	plain   []byte // decrypted bytes not yet returned
	ptBuf   []byte
	nonce   [nonceSize]byte
	counter uint64
	read    int64 // ciphertext bytes consumed
	want    int64 // expected ciphertext bytes, or -1
	done    bool
	err     error
}

// NewStreamReader returns a reader of the content sealed in src. size is the
// plaintext size declared by an authenticated header, or -1 if unknown; when
// known, a short or long stream is told apart from an altered one.
func NewStreamReader(key []byte, src io.Reader, size int64) (*StreamReader, error) {
	a, err := newStreamAEAD(key)
	if err != nil {
		return nil, err
	}
	want := int64(-1)
	if size >= 0 {
		want = EncryptedSize(size)
	}
	return &StreamReader{
		aead: a, src: src, want: want,
		buf:   make([]byte, encChunkSize+1),
		ptBuf: make([]byte, 0, ChunkSize),
	}, nil
}

// Read returns authenticated plaintext.
func (r *StreamReader) Read(p []byte) (int, error) {
	for len(r.plain) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		if r.done {
			return 0, io.EOF
		}
		// A caller's buffer that holds a whole chunk gets the plaintext
		// directly, without the copy through ptBuf.
		dst := r.ptBuf[:0]
		direct := len(p) >= ChunkSize
		if direct {
			dst = p[:0]
		}
		pt, err := r.next(dst)
		if err != nil {
			r.err = err
			return 0, err
		}
		if direct {
			return len(pt), nil
		}
		r.plain = pt
	}
	n := copy(p, r.plain)
	r.plain = r.plain[n:]
	return n, nil
}

// next reads and opens one chunk into dst.
func (r *StreamReader) next(dst []byte) ([]byte, error) {
	n, err := io.ReadFull(r.src, r.buf[r.pending:])
	n += r.pending
	r.pending = 0
	last := false
	switch {
	case err == nil:
		// A full chunk with a byte after it: not the last chunk.
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		return nil, fmt.Errorf("read chunk %d: %w", r.counter, err)
	}
	chunk := r.buf[:min(n, encChunkSize)]
	if err := r.checkLength(len(chunk), last); err != nil {
		return nil, err
	}
	streamNonce(&r.nonce, r.counter, last)
	pt, err := r.aead.Open(dst, r.nonce[:], chunk, nil)
	if err != nil {
		return nil, r.diagnose(chunk, last)
	}
	if last && len(pt) == 0 && r.counter != 0 {
		return nil, fmt.Errorf("chunk %d: empty final chunk after content: %w", r.counter, ErrMalformed)
	}
	r.read += int64(len(chunk))
	if !last {
		r.buf[0] = r.buf[encChunkSize]
		r.pending = 1
	}
	r.counter++
	r.done = last
	return pt, nil
}

// checkLength compares the stream with its declared size before any
// cryptography, so a cut or padded file gets its own error.
func (r *StreamReader) checkLength(chunkLen int, last bool) error {
	if last && chunkLen < tagSize {
		return fmt.Errorf("chunk %d: %d bytes, shorter than a tag: %w", r.counter, chunkLen, ErrTruncated)
	}
	if r.want < 0 {
		return nil
	}
	end := r.read + int64(chunkLen)
	switch {
	case !last && end >= r.want:
		return fmt.Errorf("chunk %d: content continues past its declared %d bytes: %w", r.counter, r.want, ErrTrailingData)
	case last && end < r.want:
		return fmt.Errorf("chunk %d: content ends at %d of %d bytes: %w", r.counter, end, r.want, ErrTruncated)
	case last && end > r.want:
		return fmt.Errorf("chunk %d: content has %d bytes, declared %d: %w", r.counter, end, r.want, ErrTrailingData)
	}
	return nil
}

// diagnose names why a chunk did not open: it is tried as the other kind
// (final or not) and at nearby positions; only a chunk that opens nowhere is
// reported as altered.
func (r *StreamReader) diagnose(chunk []byte, last bool) error {
	var nonce [nonceSize]byte
	try := func(counter uint64, l bool) bool {
		streamNonce(&nonce, counter, l)
		_, err := r.aead.Open(r.ptBuf[:0], nonce[:], chunk, nil)
		return err == nil
	}
	if try(r.counter, !last) {
		if last {
			return fmt.Errorf("chunk %d is not the final chunk and nothing follows: %w", r.counter, ErrTruncated)
		}
		return fmt.Errorf("chunk %d is the final chunk and data follows: %w", r.counter, ErrTrailingData)
	}
	lo := uint64(0)
	if r.counter > reorderWindow {
		lo = r.counter - reorderWindow
	}
	for c := lo; c <= r.counter+reorderWindow; c++ {
		if c == r.counter {
			continue
		}
		if try(c, false) || try(c, true) {
			return fmt.Errorf("chunk %d belongs at position %d: %w", r.counter, c, ErrReordered)
		}
	}
	return fmt.Errorf("chunk %d: %w", r.counter, ErrChunkAuth)
}
