// Package jitter is the receive buffer of a voice stream: it puts packets
// back in sequence-number order, holds them for a target delay to absorb
// network jitter, and releases one frame per frame interval, marking the
// frames that never arrived so the decoder conceals them.
//
// It has no goroutines and no clock of its own: the caller passes the time
// to Push and Pop. Memory is bounded by Capacity frames of at most
// MaxPayload bytes each, allocated once.
package jitter

import (
	"errors"
	"fmt"
	"time"
)

// MaxPayload is the largest payload a frame may carry.
const MaxPayload = 1500

// ErrPayload is returned for a payload larger than MaxPayload.
var ErrPayload = errors.New("jitter: payload too large")

// Config sets the buffer's cadence and depth.
type Config struct {
	// Frame is the audio per packet, the interval between frames out.
	Frame time.Duration
	// Delay is how long the first packet waits before play-out starts:
	// the jitter absorbed, and the latency added. 0 means 3 frames.
	Delay time.Duration
	// Capacity in frames, at least Delay/Frame + 2. 0 means 50.
	Capacity int
}

// Frame is one slot of the play-out sequence.
type Frame struct {
	Seq uint16
	// Lost is set when the packet did not arrive in time; Payload is then
	// nil and the decoder should conceal (Opus: decode a nil packet).
	Lost bool
	// Payload is valid until the next call to Push.
	Payload []byte
}

// Result says what Push did with a packet.
type Result int

const (
	Accepted  Result = iota
	Duplicate        // already buffered
	Late             // its play-out time has passed
	Resynced         // too far from the play-out point: the buffer restarted at this packet
)

func (r Result) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Duplicate:
		return "duplicate"
	case Late:
		return "late"
	case Resynced:
		return "resynced"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// Stats counts what the buffer saw.
type Stats struct {
	Pushed     uint64 // packets offered
	Duplicates uint64
	Late       uint64
	Resyncs    uint64
	Played     uint64 // frames released with a payload
	Lost       uint64 // frames released as lost
	Dropped    uint64 // frames discarded to make room (sender faster than play-out)
}

type slot struct {
	full bool
	seq  uint16
	buf  []byte
}

// Buffer is a jitter buffer. It is not safe for concurrent use.
type Buffer struct {
	cfg   Config
	slots []slot

	started bool  // a packet has arrived since the last (re)start
	playing bool  // play-out has begun
	next    int64 // extended sequence number of the next frame out
	highest int64 // highest extended sequence number pushed
	start   time.Time
	emitted int64 // frames released since start
	empty   int   // consecutive lost frames with nothing buffered
	stats   Stats
}

// New returns an empty buffer.
func New(cfg Config) (*Buffer, error) {
	if cfg.Frame <= 0 {
		return nil, fmt.Errorf("jitter: frame duration %v must be positive", cfg.Frame)
	}
	if cfg.Delay == 0 {
		cfg.Delay = 3 * cfg.Frame
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 50
	}
	if cfg.Delay < 0 || cfg.Capacity < int(cfg.Delay/cfg.Frame)+2 || cfg.Capacity > 1<<14 {
		return nil, fmt.Errorf("jitter: capacity %d frames cannot hold a delay of %v at %v per frame", cfg.Capacity, cfg.Delay, cfg.Frame)
	}
	b := &Buffer{cfg: cfg, slots: make([]slot, cfg.Capacity)}
	for i := range b.slots {
		b.slots[i].buf = make([]byte, 0, MaxPayload)
	}
	return b, nil
}

// Stats returns the counters so far.
func (b *Buffer) Stats() Stats { return b.stats }

// Len is the number of frames buffered.
func (b *Buffer) Len() int {
	n := 0
	for i := range b.slots {
		if b.slots[i].full {
			n++
		}
	}
	return n
}

// extend maps a 16-bit sequence number to the 64-bit sequence nearest the
// highest one seen, so the order survives wrap-around (RFC 3550 A.1).
func (b *Buffer) extend(seq uint16) int64 {
	return b.highest + int64(int16(seq-uint16(b.highest)))
}

func (b *Buffer) slot(ext int64) *slot {
	return &b.slots[uint64(ext)%uint64(len(b.slots))]
}

// Push offers a packet received at now. The payload is copied.
func (b *Buffer) Push(now time.Time, seq uint16, payload []byte) (Result, error) {
	if len(payload) > MaxPayload {
		return 0, fmt.Errorf("jitter: push %d bytes: %w", len(payload), ErrPayload)
	}
	b.stats.Pushed++
	if !b.started {
		b.restart(now, seq)
		b.put(int64(seq), payload)
		return Accepted, nil
	}
	ext := b.extend(seq)
	capacity := int64(len(b.slots))
	switch {
	case ext < b.next && !b.playing && ext > b.highest-capacity:
		// Reordered ahead of the first packet before play-out: start
		// earlier. The slots in between are empty: nothing below next
		// was stored, and ext > highest-capacity rules out aliases.
		b.next = ext
	case ext < b.next:
		if b.next-ext > capacity {
			// Far behind: the sender restarted its numbering.
			b.stats.Resyncs++
			b.restart(now, seq)
			b.put(b.next, payload)
			return Resynced, nil
		}
		b.stats.Late++
		return Late, nil
	case ext >= b.next+capacity:
		if ext-b.next >= 2*capacity {
			b.stats.Resyncs++
			b.restart(now, seq)
			b.put(b.next, payload)
			return Resynced, nil
		}
		// Sender ahead of play-out: drop the oldest frames for room.
		for ; b.next <= ext-capacity; b.next++ {
			if s := b.slot(b.next); s.full {
				s.full = false
				b.stats.Dropped++
			}
		}
	}
	if s := b.slot(ext); s.full && s.seq == seq {
		b.stats.Duplicates++
		return Duplicate, nil
	}
	b.put(ext, payload)
	return Accepted, nil
}

func (b *Buffer) restart(now time.Time, seq uint16) {
	for i := range b.slots {
		b.slots[i].full = false
	}
	b.started, b.playing = true, false
	b.next, b.highest = int64(seq), int64(seq)
	b.start = now.Add(b.cfg.Delay)
	b.emitted, b.empty = 0, 0
}

func (b *Buffer) put(ext int64, payload []byte) {
	s := b.slot(ext)
	s.full = true
	s.seq = uint16(ext)
	s.buf = append(s.buf[:0], payload...)
	if ext > b.highest {
		b.highest = ext
	}
}

func (b *Buffer) maxDepth() int64 {
	return min(2*int64(b.cfg.Delay/b.cfg.Frame)+2, int64(len(b.slots)))
}

// Pop returns the next frame if its play-out time has come by now, and
// false when nothing is due. Call it in a loop until it returns false:
// after a pause in calling, several frames may be due.
func (b *Buffer) Pop(now time.Time) (Frame, bool) {
	if !b.started || now.Before(b.start) {
		return Frame{}, false
	}
	due := int64(now.Sub(b.start)/b.cfg.Frame) + 1
	if b.emitted >= due {
		return Frame{}, false
	}
	b.playing = true
	b.emitted++
	// A sender clock faster than ours, or a burst after a stall, fills
	// the buffer: drop the oldest frame so the added latency stays under
	// twice the target.
	if depth := b.highest - b.next + 1; depth > b.maxDepth() {
		if s := b.slot(b.next); s.full && s.seq == uint16(b.next) {
			s.full = false
			b.stats.Dropped++
		}
		b.next++
	}
	s := b.slot(b.next)
	seq := uint16(b.next)
	b.next++
	if s.full && s.seq == seq {
		s.full = false
		b.stats.Played++
		b.empty = 0
		return Frame{Seq: seq, Payload: s.buf}, true
	}
	b.stats.Lost++
	if b.next > b.highest {
		b.empty++
		// The stream stopped (hold, DTX or the end of the call): after a
		// buffer's worth of nothing, wait for the next packet to restart
		// rather than reporting loss forever.
		if b.empty >= len(b.slots) {
			b.started = false
		}
	}
	return Frame{Seq: seq, Lost: true}, true
}

// Next returns the payload of the frame the next Pop will release, if it
// has arrived, without releasing it. After Pop reports a frame lost, a
// decoder with in-band FEC rebuilds that frame from this packet (RFC 6716
// §2.1.7) instead of concealing it. The payload is valid until the next
// call to Push.
func (b *Buffer) Next() ([]byte, bool) {
	if !b.started {
		return nil, false
	}
	next := b.next
	// Pop drops the oldest frame first when the buffer is over depth.
	if depth := b.highest - next + 1; depth > b.maxDepth() {
		next++
	}
	if s := b.slot(next); s.full && s.seq == uint16(next) {
		return s.buf, true
	}
	return nil, false
}
