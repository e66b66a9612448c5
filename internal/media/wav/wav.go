// Package wav reads and writes RIFF WAVE files: it reads PCM of 8, 16, 24
// or 32 bits and IEEE float, any channel count, mixed down to 16-bit mono;
// it writes 16-bit mono PCM. Calls run headless by playing one file into a
// call and recording the other side to another.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Audio is 16-bit mono PCM.
type Audio struct {
	SampleRate int
	Samples    []int16
}

// Duration is the length of the audio in seconds.
func (a *Audio) Duration() float64 {
	if a.SampleRate <= 0 {
		return 0
	}
	return float64(len(a.Samples)) / float64(a.SampleRate)
}

var (
	// ErrFormat is returned for a file that is not a WAVE file we read.
	ErrFormat = errors.New("wav: not a supported WAVE file")
	// ErrTruncated is returned when the file ends inside a chunk.
	ErrTruncated = errors.New("wav: file truncated")
)

const (
	formatPCM        = 1
	formatFloat      = 3
	formatExtensible = 0xFFFE

	// MaxDataBytes bounds what Decode reads into memory (about 100 minutes
	// of 48 kHz 16-bit stereo).
	MaxDataBytes = 1 << 30
	maxChannels  = 32
)

type format struct {
	tag        uint16
	channels   int
	rate       int
	bits       int
	blockAlign int
}

// Decode reads a whole WAVE file and returns it as mono 16-bit PCM at the
// file's sample rate. Channels are averaged; wider samples are rounded.
func Decode(r io.Reader) (*Audio, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("wav: read RIFF header: %w", truncated(err))
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: no RIFF/WAVE signature", ErrFormat)
	}
	var f *format
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				if f == nil {
					return nil, fmt.Errorf("%w: no fmt chunk", ErrFormat)
				}
				return nil, fmt.Errorf("%w: no data chunk", ErrFormat)
			}
			return nil, fmt.Errorf("wav: read chunk header: %w", truncated(err))
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if f != nil {
				return nil, fmt.Errorf("%w: two fmt chunks", ErrFormat)
			}
			if size < 16 || size > 1024 {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes", ErrFormat, size)
			}
			b := make([]byte, size+size&1)
			if _, err := io.ReadFull(r, b); err != nil {
				return nil, fmt.Errorf("wav: read fmt chunk: %w", truncated(err))
			}
			var err error
			if f, err = parseFormat(b[:size]); err != nil {
				return nil, err
			}
		case "data":
			if f == nil {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrFormat)
			}
			// Writers that stream set the size to 0 or 0xFFFFFFFF when they
			// cannot seek back; read to the end of the file then.
			if size == 0 || size == 0xFFFFFFFF {
				size = MaxDataBytes
			} else if size > MaxDataBytes {
				return nil, fmt.Errorf("%w: data chunk of %d bytes exceeds %d", ErrFormat, size, MaxDataBytes)
			}
			// ReadAll grows with what arrives, so a lying size costs nothing.
			data, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return nil, fmt.Errorf("wav: read data chunk: %w", err)
			}
			if size != MaxDataBytes && int64(len(data)) < size {
				return nil, fmt.Errorf("wav: data chunk has %d of %d bytes: %w", len(data), size, ErrTruncated)
			}
			return &Audio{SampleRate: f.rate, Samples: f.mix(data)}, nil
		default:
			if size > MaxDataBytes {
				return nil, fmt.Errorf("%w: %q chunk of %d bytes", ErrFormat, id, size)
			}
			// Chunks are padded to an even size (RIFF).
			n, err := io.CopyN(io.Discard, r, size+size&1)
			if err != nil && !(errors.Is(err, io.EOF) && n == size) {
				return nil, fmt.Errorf("wav: skip %q chunk: %w", id, truncated(err))
			}
		}
	}
}

func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrTruncated
	}
	return err
}

func parseFormat(b []byte) (*format, error) {
	f := &format{
		tag:        binary.LittleEndian.Uint16(b[0:2]),
		channels:   int(binary.LittleEndian.Uint16(b[2:4])),
		rate:       int(binary.LittleEndian.Uint32(b[4:8])),
		blockAlign: int(binary.LittleEndian.Uint16(b[12:14])),
		bits:       int(binary.LittleEndian.Uint16(b[14:16])),
	}
	if f.tag == formatExtensible {
		// WAVEFORMATEXTENSIBLE: cbSize, valid bits, channel mask, then the
		// sub-format GUID whose first two bytes are the real format tag.
		if len(b) < 40 {
			return nil, fmt.Errorf("%w: extensible fmt chunk of %d bytes", ErrFormat, len(b))
		}
		f.tag = binary.LittleEndian.Uint16(b[24:26])
	}
	switch {
	case f.tag != formatPCM && f.tag != formatFloat:
		return nil, fmt.Errorf("%w: format tag %#x (only PCM and IEEE float)", ErrFormat, f.tag)
	case f.channels < 1 || f.channels > maxChannels:
		return nil, fmt.Errorf("%w: %d channels", ErrFormat, f.channels)
	case f.rate < 1000 || f.rate > 384000:
		return nil, fmt.Errorf("%w: sample rate %d Hz", ErrFormat, f.rate)
	case f.tag == formatPCM && f.bits != 8 && f.bits != 16 && f.bits != 24 && f.bits != 32:
		return nil, fmt.Errorf("%w: %d-bit PCM", ErrFormat, f.bits)
	case f.tag == formatFloat && f.bits != 32 && f.bits != 64:
		return nil, fmt.Errorf("%w: %d-bit float", ErrFormat, f.bits)
	case f.blockAlign != f.channels*f.bits/8:
		return nil, fmt.Errorf("%w: block align %d for %d channels of %d bits", ErrFormat, f.blockAlign, f.channels, f.bits)
	}
	return f, nil
}

// mix converts whole frames of data to mono int16; a trailing partial
// frame is dropped.
func (f *format) mix(data []byte) []int16 {
	width := f.bits / 8
	frames := len(data) / f.blockAlign
	out := make([]int16, frames)
	for i := range frames {
		var sum float64
		for c := range f.channels {
			off := i*f.blockAlign + c*width
			sum += f.sample(data[off : off+width])
		}
		out[i] = toInt16(sum / float64(f.channels))
	}
	return out
}

// sample returns one sample scaled to the int16 range.
func (f *format) sample(b []byte) float64 {
	if f.tag == formatFloat {
		if f.bits == 32 {
			return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))) * 32768
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)) * 32768
	}
	switch f.bits {
	case 8: // unsigned, 128 is zero
		return float64(int(b[0])-128) * 256
	case 16:
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case 24:
		v := int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
		return float64(v) / 256
	default:
		return float64(int32(binary.LittleEndian.Uint32(b))) / 65536
	}
}

func toInt16(v float64) int16 {
	switch {
	case math.IsNaN(v):
		return 0
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	}
	return int16(math.Round(v))
}

// Encode writes a 16-bit mono PCM WAVE file.
func Encode(w io.Writer, a *Audio) error {
	if a.SampleRate < 1000 || a.SampleRate > 384000 {
		return fmt.Errorf("wav: encode at %d Hz: rate out of range", a.SampleRate)
	}
	if len(a.Samples)*2 > MaxDataBytes {
		return fmt.Errorf("wav: encode %d samples: more than %d bytes", len(a.Samples), MaxDataBytes)
	}
	if _, err := w.Write(header(a.SampleRate, len(a.Samples)*2)); err != nil {
		return fmt.Errorf("wav: write header: %w", err)
	}
	if _, err := w.Write(pcmBytes(nil, a.Samples)); err != nil {
		return fmt.Errorf("wav: write data: %w", err)
	}
	return nil
}

func header(rate, dataBytes int) []byte {
	h := make([]byte, 0, 44)
	h = append(h, "RIFF"...)
	h = binary.LittleEndian.AppendUint32(h, uint32(36+dataBytes))
	h = append(h, "WAVEfmt "...)
	h = binary.LittleEndian.AppendUint32(h, 16)
	h = binary.LittleEndian.AppendUint16(h, formatPCM)
	h = binary.LittleEndian.AppendUint16(h, 1)
	h = binary.LittleEndian.AppendUint32(h, uint32(rate))
	h = binary.LittleEndian.AppendUint32(h, uint32(rate*2))
	h = binary.LittleEndian.AppendUint16(h, 2)
	h = binary.LittleEndian.AppendUint16(h, 16)
	h = append(h, "data"...)
	return binary.LittleEndian.AppendUint32(h, uint32(dataBytes))
}

func pcmBytes(dst []byte, s []int16) []byte {
	for _, v := range s {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(v))
	}
	return dst
}

// Writer streams 16-bit mono PCM to a WAVE file and fixes the sizes in the
// header on Close, so a recording of any length needs no buffering.
type Writer struct {
	w     io.WriteSeeker
	bytes int
	buf   []byte
	err   error
}

// NewWriter writes a header for the given rate to w.
func NewWriter(w io.WriteSeeker, rate int) (*Writer, error) {
	if rate < 1000 || rate > 384000 {
		return nil, fmt.Errorf("wav: writer at %d Hz: rate out of range", rate)
	}
	if _, err := w.Write(header(rate, 0)); err != nil {
		return nil, fmt.Errorf("wav: write header: %w", err)
	}
	return &Writer{w: w}, nil
}

// Write appends samples.
func (w *Writer) Write(s []int16) error {
	if w.err != nil {
		return w.err
	}
	if w.bytes+2*len(s) > MaxDataBytes {
		w.err = fmt.Errorf("wav: recording exceeds %d bytes", MaxDataBytes)
		return w.err
	}
	w.buf = pcmBytes(w.buf[:0], s)
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("wav: write data: %w", err)
		return w.err
	}
	w.bytes += len(w.buf)
	return nil
}

// Close writes the final sizes into the header. It does not close the
// underlying file.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	var b [4]byte
	for _, p := range []struct {
		off int64
		v   int
	}{{4, 36 + w.bytes}, {40, w.bytes}} {
		binary.LittleEndian.PutUint32(b[:], uint32(p.v))
		if _, err := w.w.Seek(p.off, io.SeekStart); err != nil {
			return fmt.Errorf("wav: seek to fix header: %w", err)
		}
		if _, err := w.w.Write(b[:]); err != nil {
			return fmt.Errorf("wav: fix header: %w", err)
		}
	}
	if _, err := w.w.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("wav: seek to end: %w", err)
	}
	w.err = errors.New("wav: writer closed")
	return nil
}
