package sdk

import (
	"context"

	"github.com/phonex/phonex/internal/client"
)

// Voice messages (docs/files.md "Voice messages"): a WAV file coded as
// Opus at the call budget in an Ogg container, sent as a file of type
// audio/ogg with its duration in the encrypted metadata.

// VoiceType is the media type of a voice message.
const VoiceType = client.VoiceType

// ErrVoiceTooLong: the audio is longer than a voice message holds.
var ErrVoiceTooLong = client.ErrVoiceTooLong

// SendVoice encodes the WAV file at wavPath and sends it to the devices of
// to as SendFile does. Without libopus it fails with an error that says
// so.
func (d *Device) SendVoice(ctx context.Context, to, wavPath string, progress FileProgress) (SentFile, error) {
	return d.p.SendVoice(ctx, to, wavPath, progress)
}

// GetVoiceWAV fetches a voice message as GetFile does and writes it
// decoded to a 16 kHz mono WAV file at dst (empty: voice-ID.wav).
func (d *Device) GetVoiceWAV(ctx context.Context, id, dst string, progress FileProgress) (ReceivedFile, error) {
	return d.p.GetVoiceWAV(ctx, id, dst, progress)
}
