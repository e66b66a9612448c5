package sipua

import (
	"strconv"
	"strings"
)

// CodecRED is redundant audio (RFC 2198) for Opus, signalled as WebRTC
// does: red/48000/2 whose fmtp names the Opus payload type for the
// primary and the redundant encoding (RFC 2198 §5: "96/96"). A peer that
// does not know it leaves it out of its answer and the call keeps plain
// Opus.
var CodecRED = Codec{Name: "red", PT: 97, Rate: 48000, Channels: 2, Fmtp: "96/96"}

func isRED(c Codec) bool { return strings.EqualFold(c.Name, CodecRED.Name) }

// redFmtpFor reports whether a red fmtp names payload type pt for every
// encoding it lists ("pt/pt"): the only form sent and understood here.
func redFmtpFor(fmtp string, pt uint8) bool {
	parts := strings.Split(strings.TrimSpace(fmtp), "/")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 7)
		if err != nil || uint8(n) != pt {
			return false
		}
	}
	return true
}

// redFor returns m's redundant audio format over payload type pt.
func redFor(m *Media, pt uint8) (Codec, bool) {
	for _, c := range m.Codecs {
		if isRED(c) && c.Rate == CodecRED.Rate && redFmtpFor(c.Fmtp, pt) {
			return c, true
		}
	}
	return Codec{}, false
}

// NegotiatedRED returns the payload type of redundant audio when both
// descriptions of a call have it over the chosen codec, which must be
// Opus: only then may either side send it.
func NegotiatedRED(local, remote *Media, chosen Codec) (uint8, bool) {
	if !strings.EqualFold(chosen.Name, CodecOpus.Name) {
		return 0, false
	}
	l, ok := redFor(local, chosen.PT)
	if !ok {
		return 0, false
	}
	r, ok := redFor(remote, chosen.PT)
	if !ok || r.PT != l.PT || r.PT == chosen.PT {
		return 0, false
	}
	return r.PT, true
}
