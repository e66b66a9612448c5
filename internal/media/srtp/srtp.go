// Package srtp protects a call's RTP packets with SRTP (RFC 3711) keyed by
// ZRTP (RFC 6189 §4.5.3): one master key and salt per direction, the
// cipher and tag named as ZRTP negotiates them. The cryptography is
// github.com/pion/srtp; this package maps ZRTP's names onto its profiles,
// keeps replay protection on, and turns its errors into ones a caller can
// branch on.
package srtp

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	pionrtp "github.com/pion/rtp"
	pionsrtp "github.com/pion/srtp/v3"
	"github.com/pion/transport/v5/replaydetector"
)

// ZRTP cipher and SRTP auth tag names (RFC 6189 §5.1.3, §5.1.4).
const (
	CipherAES1 = "AES1" // AES-128 counter mode (RFC 3711 §4.1.1)
	CipherAES3 = "AES3" // AES-256 counter mode (RFC 6188)
	TagHS32    = "HS32" // HMAC-SHA1 truncated to 32 bits
	TagHS80    = "HS80" // HMAC-SHA1 truncated to 80 bits
)

// SaltLen is the length of an SRTP master salt: 112 bits (RFC 3711 §8.2,
// RFC 6189 §4.5.3).
const SaltLen = 14

// DefaultReplayWindow is the replay window in packets. RFC 3711 §3.3.2
// asks for at least 64; at 50 packets per second a larger window keeps a
// few seconds of reordering acceptable.
const DefaultReplayWindow = 1024

var (
	// ErrAuth means the packet's authentication tag did not verify: it was
	// forged, damaged, or protected with another key. Drop it.
	ErrAuth = errors.New("srtp: authentication failed")
	// ErrReplay means a packet with this index was already accepted, or is
	// older than the replay window. Drop it.
	ErrReplay = errors.New("srtp: replayed or too old packet")
	// ErrUnsupported names a cipher or tag this package does not provide.
	ErrUnsupported = errors.New("srtp: unsupported cipher or auth tag")
	// ErrKey means a master key or salt has the wrong length.
	ErrKey = errors.New("srtp: bad master key or salt length")
	// ErrPacket means the input is not an RTP packet we can process.
	ErrPacket = errors.New("srtp: malformed packet")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("srtp: session closed")
)

// Keys is the master key and salt of one direction.
type Keys struct {
	MasterKey  []byte
	MasterSalt []byte
}

// Config describes a session; all fields but ReplayWindow are required.
type Config struct {
	Cipher  string // CipherAES1 or CipherAES3
	AuthTag string // TagHS32 or TagHS80
	// Local keys protect what this side sends (ZRTP's srtpkeyi/srtpsalti
	// for the initiator, srtpkeyr/srtpsaltr for the responder); Remote
	// keys unprotect what it receives.
	Local, Remote Keys
	// ReplayWindow in packets; 0 means DefaultReplayWindow.
	ReplayWindow uint
}

// Profile returns pion's protection profile for a ZRTP cipher and tag.
// pion provides both AES_CM_128 and AES_256_CM (RFC 6188) with either tag.
func Profile(cipher, tag string) (pionsrtp.ProtectionProfile, error) {
	switch {
	case cipher == CipherAES1 && tag == TagHS80:
		return pionsrtp.ProtectionProfileAes128CmHmacSha1_80, nil
	case cipher == CipherAES1 && tag == TagHS32:
		return pionsrtp.ProtectionProfileAes128CmHmacSha1_32, nil
	case cipher == CipherAES3 && tag == TagHS80:
		return pionsrtp.ProtectionProfileAes256CmHmacSha1_80, nil
	case cipher == CipherAES3 && tag == TagHS32:
		return pionsrtp.ProtectionProfileAes256CmHmacSha1_32, nil
	}
	return 0, fmt.Errorf("%w: %q with %q", ErrUnsupported, cipher, tag)
}

// Session protects outgoing and unprotects incoming RTP of one call. One
// goroutine may protect while another unprotects; each direction is
// serialised internally.
type Session struct {
	tagLen int

	outMu  sync.Mutex
	out    *pionsrtp.Context
	outHdr rtpHeader

	inMu     sync.Mutex
	in       *pionsrtp.Context
	inHdr    rtpHeader
	replayed bool // set by the replay detector during Unprotect
}

// NewSession creates a session. The keys are copied by the underlying
// contexts; the caller may wipe its slices afterwards.
func NewSession(cfg Config) (*Session, error) {
	profile, err := Profile(cfg.Cipher, cfg.AuthTag)
	if err != nil {
		return nil, err
	}
	keyLen, _ := profile.KeyLen()
	tagLen, _ := profile.AuthTagRTPLen()
	for _, k := range []struct {
		name string
		Keys
	}{{"local", cfg.Local}, {"remote", cfg.Remote}} {
		if len(k.MasterKey) != keyLen || len(k.MasterSalt) != SaltLen {
			return nil, fmt.Errorf("%w: %s key %d bytes and salt %d bytes, %s wants %d and %d",
				ErrKey, k.name, len(k.MasterKey), len(k.MasterSalt), cfg.Cipher, keyLen, SaltLen)
		}
	}
	window := cfg.ReplayWindow
	if window == 0 {
		window = DefaultReplayWindow
	}
	s := &Session{tagLen: tagLen}
	// Sending needs no replay state.
	s.out, err = pionsrtp.CreateContext(cfg.Local.MasterKey, cfg.Local.MasterSalt, profile,
		pionsrtp.SRTPNoReplayProtection(), pionsrtp.SRTCPNoReplayProtection())
	if err != nil {
		return nil, fmt.Errorf("srtp: create sending context: %w", err)
	}
	s.in, err = pionsrtp.CreateContext(cfg.Remote.MasterKey, cfg.Remote.MasterSalt, profile,
		pionsrtp.SRTPReplayDetectorFactory(func() replaydetector.ReplayDetector {
			return newReplayFlag(window, s)
		}),
		pionsrtp.SRTCPReplayProtection(window))
	if err != nil {
		return nil, fmt.Errorf("srtp: create receiving context: %w", err)
	}
	return s, nil
}

// Overhead is the number of bytes SRTP adds to an RTP packet (the tag).
func (s *Session) Overhead() int { return s.tagLen }

// Protect appends to dst[:0] the SRTP packet for one marshalled RTP packet
// (RFC 3711 §3.3). dst may be reused between calls; it must not overlap
// rtp.
func (s *Session) Protect(dst, rtp []byte) ([]byte, error) {
	if len(rtp) < 12 {
		return nil, fmt.Errorf("srtp: protect %d bytes: %w", len(rtp), ErrPacket)
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.out == nil {
		return nil, ErrClosed
	}
	out, err := s.out.EncryptRTP(dst, rtp, &s.outHdr)
	if err != nil {
		return nil, fmt.Errorf("srtp: protect: %w", err)
	}
	return out, nil
}

// Unprotect verifies and decrypts one SRTP packet and returns the RTP
// packet in dst[:0]. It fails with ErrAuth for a bad tag and ErrReplay for
// a packet seen before (RFC 3711 §3.3.2); authentication is checked before
// the packet's index is recorded, so forged packets cannot block real ones.
func (s *Session) Unprotect(dst, srtp []byte) ([]byte, error) {
	if len(srtp) < 12+s.tagLen {
		return nil, fmt.Errorf("srtp: unprotect %d bytes: %w", len(srtp), ErrPacket)
	}
	if srtp[0]>>6 != 2 {
		return nil, fmt.Errorf("srtp: unprotect: RTP version %d: %w", srtp[0]>>6, ErrPacket)
	}
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.in == nil {
		return nil, ErrClosed
	}
	s.replayed = false
	out, err := s.in.DecryptRTP(dst, srtp, &s.inHdr)
	switch {
	case err == nil:
		return out, nil
	case s.replayed:
		return nil, fmt.Errorf("srtp: unprotect: %w", ErrReplay)
	case errors.Is(err, pionsrtp.ErrFailedToVerifyAuthTag):
		return nil, fmt.Errorf("srtp: unprotect: %w", ErrAuth)
	}
	return nil, fmt.Errorf("srtp: unprotect: %w: %w", ErrPacket, err)
}

// ProtectRTCP appends to dst[:0] the SRTCP packet for one compound RTCP
// packet (RFC 3711 §3.4): encrypted after the first header, with the
// E flag, the SRTCP index and the tag appended. dst must not overlap rtcp.
func (s *Session) ProtectRTCP(dst, rtcp []byte) ([]byte, error) {
	if len(rtcp) < 8 {
		return nil, fmt.Errorf("srtp: protect RTCP %d bytes: %w", len(rtcp), ErrPacket)
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.out == nil {
		return nil, ErrClosed
	}
	out, err := s.out.EncryptRTCP(dst, rtcp, nil)
	if err != nil {
		return nil, fmt.Errorf("srtp: protect RTCP: %w", err)
	}
	return out, nil
}

// UnprotectRTCP verifies and decrypts one SRTCP packet and returns the
// compound RTCP packet in dst[:0], or ErrAuth for a bad tag and ErrReplay
// for an SRTCP index seen before (RFC 3711 §3.4).
func (s *Session) UnprotectRTCP(dst, srtcp []byte) ([]byte, error) {
	// Header, sender SSRC, E flag and index, and the tag.
	if len(srtcp) < 8+4+s.tagLen || srtcp[0]>>6 != 2 {
		return nil, fmt.Errorf("srtp: unprotect RTCP %d bytes: %w", len(srtcp), ErrPacket)
	}
	s.inMu.Lock()
	defer s.inMu.Unlock()
	if s.in == nil {
		return nil, ErrClosed
	}
	out, err := s.in.DecryptRTCP(dst, srtcp, nil)
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, pionsrtp.ErrFailedToVerifyAuthTag):
		return nil, fmt.Errorf("srtp: unprotect RTCP: %w", ErrAuth)
	case strings.Contains(err.Error(), "duplicated packet"):
		// pion does not export its replay error for SRTCP.
		return nil, fmt.Errorf("srtp: unprotect RTCP: %w", ErrReplay)
	}
	return nil, fmt.Errorf("srtp: unprotect RTCP: %w: %w", ErrPacket, err)
}

// Close drops the contexts. The key schedule lives inside pion's contexts,
// which offer no wipe; dropping them is the most this layer can do.
func (s *Session) Close() error {
	s.outMu.Lock()
	s.out = nil
	s.outMu.Unlock()
	s.inMu.Lock()
	s.in = nil
	s.inMu.Unlock()
	return nil
}

// rtpHeader is reused between packets so the hot path does not allocate.
type rtpHeader = pionrtp.Header

// replayFlag wraps pion's sliding window to tell a replay apart from the
// other reasons a packet is refused.
type replayFlag struct {
	inner detector
	s     *Session
}

type detector interface {
	replaydetector.ReplayDetector
	replaydetector.CheckAccepter
}

func newReplayFlag(window uint, s *Session) replaydetector.ReplayDetector {
	// The RTP packet index is 48 bits (RFC 3711 §3.3.1).
	d := replaydetector.New(window, 1<<48-1)
	if both, ok := d.(detector); ok {
		return &replayFlag{inner: both, s: s}
	}
	return d // replays are then reported as ErrPacket
}

func (r *replayFlag) Check(seq uint64) (func() bool, bool) {
	accept, ok := r.inner.Check(seq)
	if !ok {
		r.s.replayed = true
	}
	return accept, ok
}

func (r *replayFlag) CheckSeq(seq uint64) replaydetector.Token {
	tok := r.inner.CheckSeq(seq)
	if !tok.Passed() {
		r.s.replayed = true
	}
	return tok
}

func (r *replayFlag) Accept(tok replaydetector.Token) bool { return r.inner.Accept(tok) }
