package filecrypt

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// writer builds the big-endian, length-prefixed wire formats of this
// package. Variable fields carry a 16-bit length unless noted.
type writer struct{ b []byte }

func (w *writer) u8(v byte)      { w.b = append(w.b, v) }
func (w *writer) u16(v uint16)   { w.b = binary.BigEndian.AppendUint16(w.b, v) }
func (w *writer) u32(v uint32)   { w.b = binary.BigEndian.AppendUint32(w.b, v) }
func (w *writer) u64(v uint64)   { w.b = binary.BigEndian.AppendUint64(w.b, v) }
func (w *writer) fixed(v []byte) { w.b = append(w.b, v...) }

// vec writes a 16-bit length and v; callers keep v under 64 KiB.
func (w *writer) vec(v []byte) {
	w.u16(uint16(len(v)))
	w.fixed(v)
}

func (w *writer) str(s string) { w.vec([]byte(s)) }

// reader parses what writer built; the first error sticks and later reads
// return zero values, so a decoder checks err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrMalformed)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("%s: need %d bytes, have %d", what, n, len(r.b))
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8(what string) byte {
	v := r.take(1, what)
	if v == nil {
		return 0
	}
	return v[0]
}

func (r *reader) u16(what string) uint16 {
	v := r.take(2, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint16(v)
}

func (r *reader) u32(what string) uint32 {
	v := r.take(4, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func (r *reader) u64(what string) uint64 {
	v := r.take(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// fixed returns a copy, so decoded values do not alias the input.
func (r *reader) fixed(n int, what string) []byte {
	v := r.take(n, what)
	if v == nil {
		return nil
	}
	return append([]byte(nil), v...)
}

// vec reads a 16-bit length and at most max bytes.
func (r *reader) vec(max int, what string) []byte {
	n := int(r.u16(what + " length"))
	if r.err == nil && n > max {
		r.fail("%s: %d bytes, at most %d", what, n, max)
		return nil
	}
	return r.fixed(n, what)
}

func (r *reader) str(max int, what string) string {
	v := r.vec(max, what)
	if r.err == nil && !utf8.Valid(v) {
		r.fail("%s: not UTF-8", what)
	}
	return string(v)
}

// end reports the sticky error, or trailing bytes.
func (r *reader) end(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%s: %d trailing bytes", what, len(r.b))
	}
	return r.err
}
