package codec

import (
	"errors"
	"time"
)

// ErrOpusPacket is returned for bytes that are not a well-formed Opus
// packet (RFC 6716 §3).
var ErrOpusPacket = errors.New("codec: malformed Opus packet")

// OpusPacketHasFEC reports whether an Opus packet carries in-band FEC
// (LBRR) data for the packet before it, which DecodeFEC can use.
//
// Only SILK and hybrid frames carry LBRR data (RFC 6716 §2.1.7). The first
// frame of the packet starts with one VAD flag per 20 ms SILK frame and
// then the LBRR flag, all coded with probability 1/2 at the start of the
// range coder and so equal to the leading bits of the frame (§4.2.3,
// §4.2.4).
func OpusPacketHasFEC(pkt []byte) (bool, error) {
	if len(pkt) < 1 {
		return false, ErrOpusPacket
	}
	toc := pkt[0]
	config := toc >> 3
	silkFrames := 1
	switch {
	case config >= 16: // CELT only
		return false, nil
	case config < 12: // SILK only: 10, 20, 40 or 60 ms (Table 2)
		silkFrames = [4]int{1, 1, 2, 3}[config%4]
	}
	frame, err := opusFirstFrame(pkt)
	if err != nil {
		return false, err
	}
	if len(frame) == 0 {
		return false, nil // a zero-length frame: DTX or lost at the sender
	}
	return frame[0]>>(7-silkFrames)&1 == 1, nil
}

// opusFirstFrame returns the first frame of a packet, following the frame
// packing of RFC 6716 §3.2.
func opusFirstFrame(pkt []byte) ([]byte, error) {
	body := pkt[1:]
	switch pkt[0] & 3 {
	case 0: // one frame
		return body, nil
	case 1: // two frames of equal size (§3.2.3)
		if len(body)%2 != 0 {
			return nil, ErrOpusPacket
		}
		return body[:len(body)/2], nil
	case 2: // two frames, the first with its length (§3.2.4)
		n, rest, err := opusFrameLength(body)
		if err != nil || n > len(rest) {
			return nil, ErrOpusPacket
		}
		return rest[:n], nil
	}
	// Code 3: a frame count byte, optional padding, then frames (§3.2.5).
	if len(body) < 1 {
		return nil, ErrOpusPacket
	}
	count, vbr, padded := int(body[0]&0x3F), body[0]&0x80 != 0, body[0]&0x40 != 0
	body = body[1:]
	if count == 0 {
		return nil, ErrOpusPacket
	}
	pad := 0
	for padded {
		if len(body) < 1 {
			return nil, ErrOpusPacket
		}
		b := int(body[0])
		body = body[1:]
		if b == 255 {
			pad += 254
		} else {
			pad += b
			padded = false
		}
	}
	if pad > len(body) {
		return nil, ErrOpusPacket
	}
	body = body[:len(body)-pad]
	if !vbr {
		if len(body)%count != 0 {
			return nil, ErrOpusPacket
		}
		return body[:len(body)/count], nil
	}
	if count < 2 {
		return body, nil
	}
	n, _, err := opusFrameLength(body)
	if err != nil {
		return nil, err
	}
	// The lengths of all frames but the last come first.
	rest := body
	for i := 0; i < count-1; i++ {
		var err error
		if _, rest, err = opusFrameLength(rest); err != nil {
			return nil, err
		}
	}
	if n > len(rest) {
		return nil, ErrOpusPacket
	}
	return rest[:n], nil
}

// opusFrameLength decodes a one- or two-byte frame length (§3.2.1).
func opusFrameLength(b []byte) (int, []byte, error) {
	switch {
	case len(b) < 1:
		return 0, nil, ErrOpusPacket
	case b[0] < 252:
		return int(b[0]), b[1:], nil
	case len(b) < 2:
		return 0, nil, ErrOpusPacket
	}
	return int(b[1])*4 + int(b[0]), b[2:], nil
}

// OpusPacketDuration is the audio an Opus packet carries, from its TOC
// byte and frame count (RFC 6716 §3.1, §3.2): what a receiver must play
// per packet whatever the packet time signalled in SDP.
func OpusPacketDuration(pkt []byte) (time.Duration, error) {
	if len(pkt) < 1 {
		return 0, ErrOpusPacket
	}
	config := pkt[0] >> 3
	var frame time.Duration
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]time.Duration{10, 20, 40, 60}[config%4] * time.Millisecond
	case config < 16: // hybrid: 10, 20 ms
		frame = [2]time.Duration{10, 20}[config%2] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]time.Duration{2500, 5000, 10000, 20000}[config%4] * time.Microsecond
	}
	count := 1
	switch pkt[0] & 3 {
	case 1, 2:
		count = 2
	case 3:
		if len(pkt) < 2 || pkt[1]&0x3F == 0 {
			return 0, ErrOpusPacket
		}
		count = int(pkt[1] & 0x3F)
	}
	d := frame * time.Duration(count)
	if d > 120*time.Millisecond { // §3.2.5
		return 0, ErrOpusPacket
	}
	return d, nil
}
