package sipua

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	pice "github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"

	"github.com/phonex/phonex/internal/ice"
)

// ErrBadICE: the description's ICE attributes are malformed (RFC 8839 §5).
var ErrBadICE = errors.New("sipua: malformed ICE attributes")

// Limits of RFC 8839 §5.4: ice-ufrag is 4 to 256 ice-chars, ice-pwd 22 to
// 256; more candidates than maxCandidates are not looked at.
const (
	minUfrag, minPwd, maxCred = 4, 22, 256
	maxCandidates             = 32
)

// iceAttributes renders the ICE attributes of the audio m= section (RFC 8839
// §5): credentials, ice2 (this agent follows RFC 8445), every candidate and
// end-of-candidates, as nothing is trickled.
func iceAttributes(m *Media) []sdp.Attribute {
	if m.ICEMismatch {
		// RFC 8839 §5.4: the offer's default address was none of its
		// candidates, so ICE is not used in this session.
		return []sdp.Attribute{sdp.NewPropertyAttribute("ice-mismatch")}
	}
	if m.ICE == nil {
		return nil
	}
	out := []sdp.Attribute{
		sdp.NewAttribute("ice-ufrag", m.ICE.Ufrag),
		sdp.NewAttribute("ice-pwd", m.ICE.Pwd),
		sdp.NewAttribute("ice-options", "ice2"),
	}
	for _, c := range m.ICE.Candidates {
		out = append(out, sdp.NewAttribute("candidate", c))
	}
	return append(out, sdp.NewPropertyAttribute("end-of-candidates"))
}

// parseICE reads the ICE attributes (RFC 8839 §5.1-§5.6) of an m= section;
// session-level ones come first in attrs. It returns nil when the
// description has no ICE credentials, or when it says ice-mismatch; a
// candidate this agent cannot use (another component, an unknown
// transport) is skipped, as RFC 8839 §5.1 asks, and malformed credentials
// are an error.
func parseICE(attrs []sdp.Attribute, def netip.AddrPort) (p *ice.Params, mismatch bool, err error) {
	var ufrag, pwd string
	var lite bool
	var cands []string
	seenDefault := false
	for _, at := range attrs {
		switch at.Key {
		case "ice-ufrag":
			ufrag = strings.TrimSpace(at.Value)
			if err := checkICEChars(ufrag, minUfrag); err != nil {
				return nil, false, fmt.Errorf("%w: ice-ufrag: %v", ErrBadICE, err)
			}
		case "ice-pwd":
			pwd = strings.TrimSpace(at.Value)
			if err := checkICEChars(pwd, minPwd); err != nil {
				return nil, false, fmt.Errorf("%w: ice-pwd: %v", ErrBadICE, err)
			}
		case "ice-lite":
			lite = true
		case "ice-mismatch":
			mismatch = true
		case "candidate":
			if len(cands) >= maxCandidates {
				continue
			}
			raw := strings.TrimSpace(at.Value)
			c, err := pice.UnmarshalCandidate(raw)
			if err != nil || c.Component() != 1 {
				continue // RTP component only: RTCP is multiplexed (RFC 5761)
			}
			if a, err := netip.ParseAddr(c.Address()); err == nil && c.Port() == int(def.Port()) && a.Unmap() == def.Addr() {
				seenDefault = true
			}
			cands = append(cands, raw)
		}
	}
	if mismatch || ufrag == "" || pwd == "" || len(cands) == 0 {
		return nil, mismatch, nil
	}
	if !seenDefault && def.Port() != 0 {
		// RFC 8839 §5.4: a default destination that is none of the
		// candidates means something between the agents (a signalling
		// ALG) rewrote it; ICE must not be used.
		return nil, true, nil
	}
	return &ice.Params{Ufrag: ufrag, Pwd: pwd, Candidates: cands, Lite: lite}, false, nil
}

// checkICEChars checks an ice-char string (ALPHA / DIGIT / "+" / "/", RFC
// 8839 §5.4) of min to maxCred characters.
func checkICEChars(s string, min int) error {
	if len(s) < min || len(s) > maxCred {
		return fmt.Errorf("%d characters, want %d to %d", len(s), min, maxCred)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '/') {
			return fmt.Errorf("character %s is not an ice-char", strconv.QuoteRune(rune(c)))
		}
	}
	return nil
}
