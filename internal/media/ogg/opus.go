package ogg

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Head is the Opus identification header (RFC 7845 §5.1), mono or
// stereo with channel mapping family 0.
type Head struct {
	Channels   int
	PreSkip    int // samples at 48 kHz to drop from the decoder's output
	InputRate  int // the original rate, informational only
	OutputGain int16
}

// granuleRate is the rate of the granule position whatever the coded
// rate (RFC 7845 §4).
const granuleRate = 48000

func (h Head) marshal() []byte {
	b := make([]byte, 19)
	copy(b, "OpusHead")
	b[8] = 1
	b[9] = byte(h.Channels)
	binary.LittleEndian.PutUint16(b[10:], uint16(h.PreSkip))
	binary.LittleEndian.PutUint32(b[12:], uint32(h.InputRate))
	binary.LittleEndian.PutUint16(b[16:], uint16(h.OutputGain))
	return b
}

func parseHead(b []byte) (Head, error) {
	if len(b) < 19 || string(b[:8]) != "OpusHead" {
		return Head{}, fmt.Errorf("%w: no OpusHead", ErrNotOpus)
	}
	// §5.1: a major version other than 0 is incompatible.
	if b[8]>>4 != 0 {
		return Head{}, fmt.Errorf("%w: OpusHead version %d", ErrNotOpus, b[8])
	}
	h := Head{Channels: int(b[9]), PreSkip: int(binary.LittleEndian.Uint16(b[10:])),
		InputRate: int(binary.LittleEndian.Uint32(b[12:])), OutputGain: int16(binary.LittleEndian.Uint16(b[16:]))}
	if b[18] != 0 || h.Channels < 1 || h.Channels > 2 {
		return Head{}, fmt.Errorf("%w: channel mapping family %d with %d channels", ErrNotOpus, b[18], h.Channels)
	}
	return h, nil
}

// tags is the comment header (RFC 7845 §5.2) with no user comments.
func tags(vendor string) []byte {
	b := make([]byte, 8+4+len(vendor)+4)
	copy(b, "OpusTags")
	binary.LittleEndian.PutUint32(b[8:], uint32(len(vendor)))
	copy(b[12:], vendor)
	return b
}

// Writer writes an Ogg Opus stream, one audio packet per page: a voice
// message is small and a page per 20-60 ms packet costs 27-28 bytes.
type Writer struct {
	w       io.Writer
	serial  uint32
	seq     uint32
	granule int64
	pending []byte // the last packet, held back to carry the EOS flag
	pgran   int64
	err     error
}

// NewWriter writes the two header pages (RFC 7845 §3) for a stream with
// the given serial number.
func NewWriter(w io.Writer, serial uint32, h Head, vendor string) (*Writer, error) {
	ow := &Writer{w: w, serial: serial}
	if err := ow.page(flagBOS, 0, h.marshal()); err != nil {
		return nil, err
	}
	if err := ow.page(0, 0, tags(vendor)); err != nil {
		return nil, err
	}
	return ow, nil
}

func (w *Writer) page(flags byte, granule int64, packet []byte) error {
	if len(packet) >= 255*255 {
		return fmt.Errorf("ogg: packet of %d bytes too long for one page", len(packet))
	}
	// Lacing (RFC 3533 §5): 255s then the remainder, a 0 if it divides.
	seg := make([]byte, 0, len(packet)/255+1)
	for n := len(packet); ; n -= 255 {
		if n < 255 {
			seg = append(seg, byte(n))
			break
		}
		seg = append(seg, 255)
	}
	p := page{flags: flags, granule: granule, serial: w.serial, seq: w.seq, segments: seg, body: packet}
	w.seq++
	if _, err := w.w.Write(p.marshal()); err != nil {
		return fmt.Errorf("ogg: write page: %w", err)
	}
	return nil
}

// WritePacket adds one Opus packet carrying samples48k samples (at
// 48 kHz) of audio. The granule position counts every sample the decoder
// puts out, the pre-skip included (RFC 7845 §4), so it starts at zero: a
// first page beyond its packets' samples would mean a stream that starts
// late, and players would cut the pre-skip twice.
func (w *Writer) WritePacket(packet []byte, samples48k int) error {
	if w.err != nil {
		return w.err
	}
	if w.pending != nil {
		w.err = w.page(0, w.pgran, w.pending)
	}
	w.granule += int64(samples48k)
	w.pending, w.pgran = append(make([]byte, 0, len(packet)), packet...), w.granule
	return w.err
}

// Close writes the last packet on the end-of-stream page with the granule
// position of the last real sample (RFC 7845 §4.5: end trimming), given as
// total, the samples at 48 kHz the stream decodes to after pre-skip.
func (w *Writer) Close(total int64, preSkip int) error {
	if w.err != nil {
		return w.err
	}
	if w.pending == nil {
		return fmt.Errorf("ogg: no audio packet")
	}
	g := w.pgran
	if end := int64(preSkip) + total; end < g {
		g = end
	}
	return w.page(flagEOS, g, w.pending)
}

// Reader reads the packets of an Ogg Opus stream.
type Reader struct {
	r       io.Reader
	Head    Head
	serial  uint32
	seq     uint32
	packets [][]byte
	partial []byte
	eos     bool
	// Granule is the granule position of the last page read.
	Granule int64
}

// NewReader reads and checks the header pages.
func NewReader(r io.Reader) (*Reader, error) {
	or := &Reader{r: r}
	p, err := readPage(r)
	if err != nil {
		return nil, err
	}
	if p.flags&flagBOS == 0 {
		return nil, fmt.Errorf("%w: first page is not a beginning of stream", ErrNotOpus)
	}
	or.serial, or.seq = p.serial, p.seq
	if err := or.take(p); err != nil {
		return nil, err
	}
	head, err := or.Packet()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotOpus, err)
	}
	if or.Head, err = parseHead(head); err != nil {
		return nil, err
	}
	t, err := or.Packet()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotOpus, err)
	}
	if len(t) < 8 || string(t[:8]) != "OpusTags" {
		return nil, fmt.Errorf("%w: no OpusTags", ErrNotOpus)
	}
	return or, nil
}

// take splits a page into packets, joining a packet continued from the
// page before.
func (r *Reader) take(p *page) error {
	if p.serial != r.serial {
		return fmt.Errorf("%w: page of another stream (serial %d)", ErrFormat, p.serial)
	}
	if p.flags&flagContinued == 0 && r.partial != nil {
		return fmt.Errorf("%w: page %d does not continue the packet before", ErrFormat, p.seq)
	}
	if p.flags&flagContinued != 0 && r.partial == nil {
		return fmt.Errorf("%w: page %d continues no packet", ErrFormat, p.seq)
	}
	off := 0
	for _, s := range p.segments {
		r.partial = append(r.partial, p.body[off:off+int(s)]...)
		if r.partial == nil {
			r.partial = []byte{}
		}
		off += int(s)
		if len(r.partial) > maxPacket {
			return fmt.Errorf("%w: packet longer than %d bytes", ErrFormat, maxPacket)
		}
		if s < 255 {
			r.packets = append(r.packets, r.partial)
			r.partial = nil
		}
	}
	r.Granule = p.granule
	r.eos = p.flags&flagEOS != 0
	return nil
}

// Packet returns the next packet; io.EOF after the last.
func (r *Reader) Packet() ([]byte, error) {
	for len(r.packets) == 0 {
		if r.eos {
			return nil, io.EOF
		}
		p, err := readPage(r.r)
		if err == io.EOF {
			if r.partial != nil {
				return nil, fmt.Errorf("%w: stream ends inside a packet", ErrFormat)
			}
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		if p.seq != r.seq+1 {
			return nil, fmt.Errorf("%w: page %d after %d: a page is missing", ErrFormat, p.seq, r.seq)
		}
		r.seq = p.seq
		if err := r.take(p); err != nil {
			return nil, err
		}
	}
	pk := r.packets[0]
	r.packets = r.packets[1:]
	return pk, nil
}
