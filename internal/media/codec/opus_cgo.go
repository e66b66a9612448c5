//go:build cgo

package codec

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>

// libopus is loaded at run time, so that phonex builds with only a C
// compiler and runs, with G.711 only, where libopus.so.0 is missing. The
// types and values below are libopus's stable ABI (opus_defines.h,
// opus.h of libopus 1.x); no libopus header is needed.
typedef struct OpusEncoder OpusEncoder;
typedef struct OpusDecoder OpusDecoder;

enum {
	PX_OPUS_OK = 0,
	PX_OPUS_UNIMPLEMENTED = -5,
	PX_OPUS_APPLICATION_VOIP = 2048,
	PX_OPUS_SIGNAL_VOICE = 3001,
	PX_SET_BITRATE = 4002,
	PX_SET_MAX_BANDWIDTH = 4004,
	PX_SET_VBR = 4006,
	PX_SET_COMPLEXITY = 4010,
	PX_SET_INBAND_FEC = 4012,
	PX_SET_PACKET_LOSS_PERC = 4014,
	PX_SET_DTX = 4016,
	PX_SET_SIGNAL = 4024,
};

typedef struct {
	OpusEncoder *(*enc_create)(int32_t, int, int, int *);
	OpusDecoder *(*dec_create)(int32_t, int, int *);
	int32_t (*encode)(OpusEncoder *, const int16_t *, int, unsigned char *, int32_t);
	int (*decode)(OpusDecoder *, const unsigned char *, int32_t, int16_t *, int, int);
	int (*enc_ctl)(OpusEncoder *, int, ...);
	void (*enc_destroy)(OpusEncoder *);
	void (*dec_destroy)(OpusDecoder *);
	const char *(*version)(void);
} px_opus;

// px_load opens the library and resolves every function, or returns NULL
// and sets *missing to what failed (owned by the dynamic loader or
// static).
static px_opus *px_load(const char *name, const char **missing) {
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		*missing = dlerror();
		return NULL;
	}
	px_opus *o = calloc(1, sizeof *o);
	if (o == NULL) {
		*missing = "out of memory";
		return NULL;
	}
#define PX_SYM(field, sym) \
	if ((*(void **)&o->field = dlsym(h, sym)) == NULL) { *missing = sym; free(o); dlclose(h); return NULL; }
	PX_SYM(enc_create, "opus_encoder_create")
	PX_SYM(dec_create, "opus_decoder_create")
	PX_SYM(encode, "opus_encode")
	PX_SYM(decode, "opus_decode")
	PX_SYM(enc_ctl, "opus_encoder_ctl")
	PX_SYM(enc_destroy, "opus_encoder_destroy")
	PX_SYM(dec_destroy, "opus_decoder_destroy")
	PX_SYM(version, "opus_get_version_string")
#undef PX_SYM
	// The handle stays open for the life of the process: codecs made
	// from it may outlive a switch to another library.
	return o;
}

static OpusEncoder *px_enc_create(px_opus *o, int32_t rate, int *err) {
	return o->enc_create(rate, 1, PX_OPUS_APPLICATION_VOIP, err);
}
static OpusDecoder *px_dec_create(px_opus *o, int32_t rate, int *err) {
	return o->dec_create(rate, 1, err);
}
static int32_t px_encode(px_opus *o, OpusEncoder *e, const int16_t *pcm, int n, unsigned char *out, int32_t max) {
	return o->encode(e, pcm, n, out, max);
}
static int px_decode(px_opus *o, OpusDecoder *d, const unsigned char *data, int32_t len, int16_t *pcm, int max, int fec) {
	return o->decode(d, data, len, pcm, max, fec);
}
// opus_encoder_ctl is variadic, which cgo cannot call; every request we
// use takes one opus_int32.
static int px_set_int(px_opus *o, OpusEncoder *e, int req, int32_t v) {
	switch (req) {
	case PX_SET_BITRATE: case PX_SET_MAX_BANDWIDTH: case PX_SET_VBR: case PX_SET_COMPLEXITY: case PX_SET_INBAND_FEC:
	case PX_SET_PACKET_LOSS_PERC: case PX_SET_DTX: case PX_SET_SIGNAL:
		return o->enc_ctl(e, req, v);
	}
	return PX_OPUS_UNIMPLEMENTED;
}
static void px_enc_destroy(px_opus *o, OpusEncoder *e) { o->enc_destroy(e); }
static void px_dec_destroy(px_opus *o, OpusDecoder *d) { o->dec_destroy(d); }
static const char *px_version(px_opus *o) { return o->version(); }
*/
import "C"

import (
	"fmt"
	"os"
	"sync"
	"time"
	"unsafe"
)

// DefaultOpusLibrary is the libopus loaded when PHONEX_LIBOPUS does not
// name another.
const DefaultOpusLibrary = "libopus.so.0"

var opusLib struct {
	sync.Mutex
	loaded bool
	lib    *C.px_opus
	err    error
}

// LoadOpusLibrary loads libopus from name (a file name the dynamic loader
// resolves, or a path) for every codec made afterwards, replacing the one
// loaded before. Without a call, the first Opus codec loads
// $PHONEX_LIBOPUS or DefaultOpusLibrary. The error wraps
// ErrOpusUnavailable.
func LoadOpusLibrary(name string) error {
	opusLib.Lock()
	defer opusLib.Unlock()
	opusLib.lib, opusLib.err = loadOpus(name)
	opusLib.loaded = true
	return opusLib.err
}

func loadOpus(name string) (*C.px_opus, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var missing *C.char
	lib := C.px_load(cname, &missing)
	if lib == nil {
		return nil, &opusLoadError{reason: fmt.Sprintf("cannot load %s: %s", name, C.GoString(missing))}
	}
	return lib, nil
}

// opusLoadError says why libopus could not be loaded.
type opusLoadError struct{ reason string }

func (e *opusLoadError) Error() string {
	return ErrOpusUnavailable.Error() + ": " + e.reason + " (install libopus0, or use PCMU/PCMA)"
}

func (e *opusLoadError) Unwrap() error { return ErrOpusUnavailable }

func opusLibrary() (*C.px_opus, error) {
	opusLib.Lock()
	defer opusLib.Unlock()
	if !opusLib.loaded {
		name := os.Getenv("PHONEX_LIBOPUS")
		if name == "" {
			name = DefaultOpusLibrary
		}
		opusLib.lib, opusLib.err = loadOpus(name)
		opusLib.loaded = true
	}
	return opusLib.lib, opusLib.err
}

// OpusUnavailableReason says why Opus cannot be used, or "" when it can.
func OpusUnavailableReason() string {
	_, err := opusLibrary()
	if le, ok := err.(*opusLoadError); ok {
		return le.reason
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// Opus is an Opus encoder and decoder (RFC 6716) in libopus, for 16-bit
// mono PCM. Each has its own state: Encode and Decode may be called from
// two goroutines, but neither from two at once.
type Opus struct {
	cfg     OpusConfig
	samples int
	lib     *C.px_opus
	enc     *C.OpusEncoder
	dec     *C.OpusDecoder
}

// OpusVersion is the libopus version string.
func OpusVersion() string {
	lib, err := opusLibrary()
	if err != nil {
		return "unavailable: " + err.Error()
	}
	return C.GoString(C.px_version(lib))
}

// NewOpus creates an Opus codec. Close it to free the C state. Without
// libopus it returns an error wrapping ErrOpusUnavailable.
func NewOpus(cfg OpusConfig) (*Opus, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	lib, err := opusLibrary()
	if err != nil {
		return nil, err
	}
	o := &Opus{cfg: c, lib: lib, samples: int(c.Frame * time.Duration(c.SampleRate) / time.Second)}
	var cerr C.int
	o.enc = C.px_enc_create(lib, C.int32_t(c.SampleRate), &cerr)
	if cerr != C.PX_OPUS_OK || o.enc == nil {
		return nil, fmt.Errorf("codec: create Opus encoder: %w", o.opusError(cerr))
	}
	o.dec = C.px_dec_create(lib, C.int32_t(c.SampleRate), &cerr)
	if cerr != C.PX_OPUS_OK || o.dec == nil {
		err := o.opusError(cerr)
		o.Close()
		return nil, fmt.Errorf("codec: create Opus decoder: %w", err)
	}
	vbr := 1
	if c.CBR {
		vbr = 0
	}
	for _, s := range []struct {
		name string
		req  C.int
		v    int
	}{
		{"bitrate", C.PX_SET_BITRATE, c.Bitrate},
		{"max bandwidth", C.PX_SET_MAX_BANDWIDTH, int(c.MaxBandwidth)},
		{"complexity", C.PX_SET_COMPLEXITY, *c.Complexity},
		{"VBR", C.PX_SET_VBR, vbr},
		{"DTX", C.PX_SET_DTX, b2i(c.DTX)},
		{"FEC", C.PX_SET_INBAND_FEC, b2i(c.FEC)},
		{"packet loss", C.PX_SET_PACKET_LOSS_PERC, c.PacketLoss},
		{"signal", C.PX_SET_SIGNAL, C.PX_OPUS_SIGNAL_VOICE},
	} {
		if r := C.px_set_int(lib, o.enc, s.req, C.int32_t(s.v)); r != C.PX_OPUS_OK {
			err := o.opusError(r)
			o.Close()
			return nil, fmt.Errorf("codec: set Opus %s to %d: %w", s.name, s.v, err)
		}
	}
	return o, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// SetBitrate changes the target bitrate during a call.
func (o *Opus) SetBitrate(bps int) error {
	if o.enc == nil {
		return ErrClosed
	}
	if bps < 6000 || bps > 64000 {
		return fmt.Errorf("codec: Opus bitrate %d: want 6000..64000 bit/s", bps)
	}
	if r := C.px_set_int(o.lib, o.enc, C.PX_SET_BITRATE, C.int32_t(bps)); r != C.PX_OPUS_OK {
		return fmt.Errorf("codec: set Opus bitrate: %w", o.opusError(r))
	}
	o.cfg.Bitrate = bps
	return nil
}

// SetPacketLoss tells the encoder the loss the peer reports, in percent,
// so that it spends enough bits on in-band FEC (RFC 6716 §2.1.7) and
// makes its frames less dependent on each other.
func (o *Opus) SetPacketLoss(percent int) error {
	if o.enc == nil {
		return ErrClosed
	}
	if percent < 0 || percent > 100 {
		return fmt.Errorf("codec: Opus packet loss %d%%: want 0..100", percent)
	}
	if r := C.px_set_int(o.lib, o.enc, C.PX_SET_PACKET_LOSS_PERC, C.int32_t(percent)); r != C.PX_OPUS_OK {
		return fmt.Errorf("codec: set Opus packet loss: %w", o.opusError(r))
	}
	o.cfg.PacketLoss = percent
	return nil
}

// SetFrameDuration implements PacketTimer.
func (o *Opus) SetFrameDuration(d time.Duration) error {
	if err := checkFrame(d); err != nil {
		return err
	}
	o.cfg.Frame = d
	o.samples = int(d * time.Duration(o.cfg.SampleRate) / time.Second)
	return nil
}

// Settings returns the encoder configuration in effect.
func (o *Opus) Settings() OpusConfig { return o.cfg }

// Name implements Codec.
func (o *Opus) Name() string { return "opus" }

// PayloadType implements Codec.
func (o *Opus) PayloadType() uint8 { return o.cfg.PayloadType }

// SampleRate implements Codec.
func (o *Opus) SampleRate() int { return o.cfg.SampleRate }

// ClockRate implements Codec.
func (o *Opus) ClockRate() int { return opusClockRate }

// FrameDuration implements Codec.
func (o *Opus) FrameDuration() time.Duration { return o.cfg.Frame }

// FrameSamples implements Codec.
func (o *Opus) FrameSamples() int { return o.samples }

// Encode implements Codec. With DTX on, a frame of silence may encode to
// one or two bytes, which a sender need not transmit (RFC 7587 §3.1.3).
func (o *Opus) Encode(dst []byte, pcm []int16) ([]byte, error) {
	if o.enc == nil {
		return dst, ErrClosed
	}
	if len(pcm) != o.samples {
		return dst, fmt.Errorf("opus encode %d samples, want %d: %w", len(pcm), o.samples, ErrFrameSize)
	}
	n0 := len(dst)
	dst = grow(dst, maxOpusPacket)
	out := dst[n0 : n0+maxOpusPacket]
	n := C.px_encode(o.lib, o.enc, (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(o.samples),
		(*C.uchar)(unsafe.Pointer(&out[0])), C.int32_t(len(out)))
	if n < 0 {
		return dst[:n0], fmt.Errorf("codec: Opus encode: %w", OpusError(n))
	}
	return dst[:n0+int(n)], nil
}

// Decode implements Codec. A nil payload runs libopus's packet loss
// concealment for one frame.
func (o *Opus) Decode(dst []int16, payload []byte) ([]int16, error) {
	return o.decode(dst, payload, false)
}

// DecodeFEC conceals a lost frame with the forward error correction data
// carried in the packet that follows it (RFC 6716 §2.1.7); without FEC in
// that packet it behaves as Decode(dst, nil).
func (o *Opus) DecodeFEC(dst []int16, next []byte) ([]int16, error) {
	return o.decode(dst, next, true)
}

func (o *Opus) decode(dst []int16, payload []byte, fec bool) ([]int16, error) {
	if o.dec == nil {
		return dst, ErrClosed
	}
	// A packet may hold up to 120 ms (RFC 6716 §3.2.5); for loss and FEC
	// the frame size must be exactly the missing duration.
	limit := o.cfg.SampleRate * 120 / 1000
	if payload == nil || fec {
		limit = o.samples
	}
	n0 := len(dst)
	dst = grow(dst, limit)
	out := dst[n0 : n0+limit]
	var data *C.uchar
	if len(payload) > 0 {
		data = (*C.uchar)(unsafe.Pointer(&payload[0]))
	}
	n := C.px_decode(o.lib, o.dec, data, C.int32_t(len(payload)),
		(*C.int16_t)(unsafe.Pointer(&out[0])), C.int(limit), C.int(b2i(fec)))
	if n < 0 {
		return dst[:n0], fmt.Errorf("codec: Opus decode %d bytes: %w", len(payload), OpusError(n))
	}
	return dst[:n0+int(n)], nil
}

// Close implements Codec.
func (o *Opus) Close() error {
	if o.enc != nil {
		C.px_enc_destroy(o.lib, o.enc)
		o.enc = nil
	}
	if o.dec != nil {
		C.px_dec_destroy(o.lib, o.dec)
		o.dec = nil
	}
	return nil
}

// OpusError is a libopus error code.
type OpusError int

// opusErrorText is libopus's fixed set of error codes (opus_defines.h).
var opusErrorText = map[OpusError]string{
	-1: "invalid argument", -2: "buffer too small", -3: "internal error", -4: "corrupted stream",
	-5: "request not implemented", -6: "invalid state", -7: "memory allocation failed",
}

func (e OpusError) Error() string {
	if s, ok := opusErrorText[e]; ok {
		return "libopus: " + s
	}
	return fmt.Sprintf("libopus: error %d", int(e))
}

func (o *Opus) opusError(code C.int) error { return OpusError(code) }

func grow[T any](s []T, n int) []T {
	if cap(s)-len(s) < n {
		s = append(s[:cap(s)], make([]T, n-(cap(s)-len(s)))...)[:len(s)]
	}
	return s[:len(s)+n]
}
