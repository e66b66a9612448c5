package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/phonex/phonex/internal/media/codec"
	"github.com/phonex/phonex/internal/media/dsp"
	"github.com/phonex/phonex/internal/media/ogg"
	"github.com/phonex/phonex/internal/media/wav"
)

// VoiceType is the media type of a voice message (RFC 7845 §9).
const VoiceType = "audio/ogg"

// Voice messages are coded as a call is (docs/calls.md): Opus at 16 kHz,
// 16 kbit/s, 20 ms frames.
const (
	voiceRate    = 16000
	voiceBitrate = 16000
	voiceFrame   = 20 * time.Millisecond
	// voicePreSkip is the encoder's lookahead at 48 kHz that the decoder
	// drops (RFC 7845 §4.2); libopus's is 6.5 ms at these settings, and
	// 312 samples is what its own tools write for 16 kHz input.
	voicePreSkip = 312
	// voiceMax bounds a voice message: the metadata's duration field is
	// 32-bit milliseconds, and longer audio is a file, not a message.
	voiceMax = 30 * time.Minute
)

// ErrVoiceTooLong is returned for audio beyond what a voice message holds.
var ErrVoiceTooLong = errors.New("voice message longer than 30 minutes")

// EncodeVoice reads a WAV file, mixes it to mono, resamples it to the
// codec's rate and writes it as Ogg Opus to dst; it returns the duration.
// Without libopus it fails with codec.ErrOpusUnavailable.
func EncodeVoice(wavPath string, dst io.Writer) (time.Duration, error) {
	f, err := os.Open(wavPath)
	if err != nil {
		return 0, err
	}
	a, err := wav.Decode(f)
	f.Close()
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", wavPath, err)
	}
	if len(a.Samples) == 0 {
		return 0, fmt.Errorf("read %s: %w: no audio", wavPath, wav.ErrFormat)
	}
	dur := time.Duration(len(a.Samples)) * time.Second / time.Duration(a.SampleRate)
	if dur > voiceMax {
		return 0, fmt.Errorf("%s: %w", wavPath, ErrVoiceTooLong)
	}
	pcm := a.Samples
	if a.SampleRate != voiceRate {
		if pcm, err = dsp.Resample(pcm, a.SampleRate, voiceRate); err != nil {
			return 0, fmt.Errorf("resample %s: %w", wavPath, err)
		}
	}
	enc, err := codec.NewOpus(codec.OpusConfig{SampleRate: voiceRate, Bitrate: voiceBitrate, Frame: voiceFrame})
	if err != nil {
		return 0, fmt.Errorf("voice message: %w (%s)", err, codec.OpusUnavailableReason())
	}
	defer enc.Close()
	var serial [4]byte
	rand.Read(serial[:])
	w, err := ogg.NewWriter(dst, binary.LittleEndian.Uint32(serial[:]),
		ogg.Head{Channels: 1, PreSkip: voicePreSkip, InputRate: a.SampleRate}, "phonex "+codec.OpusVersion())
	if err != nil {
		return 0, err
	}
	n := enc.FrameSamples()
	per48k := n * 48000 / voiceRate
	frame := make([]int16, n)
	var pkt []byte
	// Pad with silence to whole frames and push the lookahead out, so the
	// end of the audio is coded; the EOS granule trims the padding.
	for off := 0; off < len(pcm)+voicePreSkip*voiceRate/48000; off += n {
		clear(frame)
		if off < len(pcm) {
			copy(frame, pcm[off:])
		}
		if pkt, err = enc.Encode(pkt[:0], frame); err != nil {
			return 0, fmt.Errorf("encode: %w", err)
		}
		if err := w.WritePacket(pkt, per48k); err != nil {
			return 0, err
		}
	}
	return dur, w.Close(int64(len(pcm))*48000/voiceRate, voicePreSkip)
}

// DecodeVoice decodes an Ogg Opus file to 16 kHz mono PCM, without the
// pre-skip and trimmed to the end granule position (RFC 7845 §4.2, §4.5).
func DecodeVoice(r io.Reader) (*wav.Audio, error) {
	or, err := ogg.NewReader(r)
	if err != nil {
		return nil, err
	}
	dec, err := codec.NewOpus(codec.OpusConfig{SampleRate: voiceRate, Frame: 60 * time.Millisecond})
	if err != nil {
		return nil, fmt.Errorf("voice message: %w (%s)", err, codec.OpusUnavailableReason())
	}
	defer dec.Close()
	var out []int16
	maxSamples := int(voiceMax/time.Second) * voiceRate
	for {
		pkt, err := or.Packet()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		d, err := codec.OpusPacketDuration(pkt)
		if err != nil {
			return nil, fmt.Errorf("voice packet: %w", err)
		}
		if err := dec.SetFrameDuration(d); err != nil {
			return nil, fmt.Errorf("voice packet of %v: %w", d, err)
		}
		if out, err = dec.Decode(out, pkt); err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		if len(out) > maxSamples {
			return nil, fmt.Errorf("decode: %w", ErrVoiceTooLong)
		}
	}
	skip := or.Head.PreSkip * voiceRate / 48000
	end := int((or.Granule - int64(or.Head.PreSkip)) * voiceRate / 48000)
	if skip > len(out) {
		skip = len(out)
	}
	out = out[skip:]
	if end >= 0 && end < len(out) {
		out = out[:end]
	}
	return &wav.Audio{SampleRate: voiceRate, Samples: out}, nil
}

// SendVoice encodes the WAV file as an Ogg Opus voice message and sends it
// as a file of type audio/ogg with its duration in the metadata.
func (p *Profile) SendVoice(ctx context.Context, to, wavPath string, progress FileProgress) (SentFile, error) {
	dir := filepath.Join(p.Dir, spoolDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return SentFile{}, err
	}
	name := "voice-" + p.now().UTC().Format("20060102-150405") + ".ogg"
	tmp, err := os.MkdirTemp(dir, "voice-")
	if err != nil {
		return SentFile{}, err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return SentFile{}, err
	}
	dur, err := EncodeVoice(wavPath, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return SentFile{}, err
	}
	return p.sendFile(ctx, to, path, dur, progress)
}

// GetVoiceWAV fetches a voice message like GetFile and writes it decoded
// as a WAV file at dst; dst appears only once it is whole.
func (p *Profile) GetVoiceWAV(ctx context.Context, id, dst string, progress FileProgress) (ReceivedFile, error) {
	if dst == "" {
		dst = "voice-" + id + ".wav"
	}
	if _, err := os.Lstat(dst); err == nil {
		return ReceivedFile{}, fmt.Errorf("%w: %s (choose another with -o)", ErrFileExists, dst)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dst), ".voice-")
	if err != nil {
		return ReceivedFile{}, err
	}
	defer os.RemoveAll(tmp)
	r, err := p.GetFile(ctx, id, filepath.Join(tmp, "voice.ogg"), progress)
	if err != nil {
		return r, err
	}
	if r.Type != VoiceType {
		return r, fmt.Errorf("file %s is %s, not a voice message: fetch it without --wav", id, r.Type)
	}
	src, err := os.Open(r.Path)
	if err != nil {
		return r, err
	}
	a, err := DecodeVoice(src)
	src.Close()
	if err != nil {
		return r, fmt.Errorf("voice message %s: %w", id, err)
	}
	part := filepath.Join(tmp, "voice.wav")
	out, err := os.OpenFile(part, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return r, err
	}
	err = wav.Encode(out, a)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r, err
	}
	if err := os.Rename(part, dst); err != nil {
		return r, err
	}
	r.Path = dst
	p.db.db.ExecContext(ctx, `UPDATE file_recv SET path=? WHERE id=?`, dst, id)
	return r, nil
}
