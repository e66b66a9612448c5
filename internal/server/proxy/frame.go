package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/phonex/phonex/internal/siplimit"
)

// A strict framing and validation layer in front of sipgo's parser: sipgo
// lets the last of several Content-Length headers win and closes the
// connection silently on a message it cannot parse. Every message on a SIP
// connection passes frame first, which finds its exact length from a single
// Content-Length (RFC 3261 §18.3: mandatory on stream transports) and
// refuses what RFC 3261's grammar (§25.1) does not allow with the answer
// RFC 3261 §21 gives.

// errPartial means the message is not complete yet.
var errPartial = errors.New("sip message incomplete")

// FrameError is a message refused by the framing layer.
type FrameError struct {
	Status int    // SIP status to answer a request with
	Reason string // reason phrase
	// Length is the refused message's length when its end is known, so the
	// connection can go on with the next one; 0 means the stream cannot be
	// resynchronised and must be closed.
	Length int
}

func (e *FrameError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Reason) }

const (
	maxHeaderBytes = 32 << 10  // start line and headers
	maxCSeq        = 1<<31 - 1 // RFC 3261 §8.1.1.5
)

// frame checks the message at the start of b and returns its length.
func frame(b []byte) (int, error) {
	n, _, _, err := frameLines(b)
	return n, err
}

// frameLines is frame that also returns the message's start line and
// header lines, split, and where its body starts, for the node's own
// MESSAGE path (direct.go).
func frameLines(b []byte) (int, []string, int, error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > maxHeaderBytes {
			return 0, nil, 0, &FrameError{Status: 513, Reason: "Message Too Large"}
		}
		if i := bytes.IndexByte(b, 0); i >= 0 {
			return 0, nil, 0, &FrameError{Status: 400, Reason: "NUL byte in header"}
		}
		return 0, nil, 0, errPartial
	}
	if end+4 > maxHeaderBytes {
		return 0, nil, 0, &FrameError{Status: 513, Reason: "Message Too Large"}
	}
	head := b[:end]
	if bytes.IndexByte(head, 0) >= 0 {
		return 0, nil, 0, &FrameError{Status: 400, Reason: "NUL byte in header"}
	}
	lines := strings.Split(string(head), "\r\n")
	req, method, err := startLine(lines[0])
	if err != nil {
		return 0, nil, 0, err
	}
	length, clSeen := -1, 0
	var later *FrameError // a refusal that waits for the message's length
	for i, l := range lines[1:] {
		if l == "" {
			return 0, nil, 0, &FrameError{Status: 400, Reason: "Bad header line"}
		}
		if l[0] == ' ' || l[0] == '\t' {
			if i == 0 {
				return 0, nil, 0, &FrameError{Status: 400, Reason: "Continuation line without a header"}
			}
			continue // folded header value (RFC 3261 §7.3.1)
		}
		name, _, ok := strings.Cut(l, ":")
		name = strings.TrimRight(name, " \t")
		if !ok || !isToken(name) {
			return 0, nil, 0, &FrameError{Status: 400, Reason: "Bad header line"}
		}
		if bad := strings.IndexFunc(l, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }); bad >= 0 {
			return 0, nil, 0, &FrameError{Status: 400, Reason: "Control character in header"}
		}
		switch {
		case strings.EqualFold(name, "Content-Length"), strings.EqualFold(name, "l"):
			clSeen++
			if clSeen > 1 {
				return 0, nil, 0, &FrameError{Status: 400, Reason: "Multiple Content-Length headers"}
			}
			v := strings.TrimSpace(headerValue(lines[1+i:]))
			if v == "" || len(v) > 9 || strings.TrimLeft(v, "0123456789") != "" {
				return 0, nil, 0, &FrameError{Status: 400, Reason: "Bad Content-Length"}
			}
			length, _ = strconv.Atoi(v)
		case strings.EqualFold(name, "CSeq"):
			f := strings.Fields(headerValue(lines[1+i:]))
			var n uint64
			err := errors.New("no number")
			if len(f) == 2 {
				n, err = strconv.ParseUint(f[0], 10, 32)
			}
			if later == nil && (err != nil || n > maxCSeq || req && f[1] != method) {
				later = &FrameError{Status: 400, Reason: "Bad CSeq"}
			}
		}
	}
	if clSeen == 0 {
		return 0, nil, 0, &FrameError{Status: 400, Reason: "Missing Content-Length"}
	}
	total := end + 4 + length
	if total > siplimit.MaxMessage {
		// sipgo would drop the connection without a word; answer first.
		return 0, nil, 0, &FrameError{Status: 513, Reason: "Message Too Large"}
	}
	if len(b) < total {
		return 0, nil, 0, errPartial
	}
	if later == nil {
		later = startLineLater(lines[0], req)
	}
	if later == nil && zeroRead(b[:total]) {
		// sipgo would drop a read of only zeros inside this body and wait
		// for bytes that never come: refuse it in words instead.
		later = &FrameError{Status: 400, Reason: "Body has a run of zero bytes the node cannot carry"}
	}
	if later != nil {
		later.Length = total
		return 0, nil, 0, later
	}
	return total, lines, end + 4, nil
}

// zeroRead reports whether one of the reads that hand msg to sipgo (one
// message at a time, readBuffer bytes each from its start; see
// peerConn.Read) would hold only zero bytes.
func zeroRead(msg []byte) bool {
	for len(msg) > 0 {
		n := min(readBuffer, len(msg))
		if len(bytes.Trim(msg[:n], "\x00")) == 0 {
			return true
		}
		msg = msg[n:]
	}
	return false
}

// headerValue is the value of the header on lines[0], with its folded
// continuation lines joined by a space.
func headerValue(lines []string) string {
	_, v, _ := strings.Cut(lines[0], ":")
	for _, l := range lines[1:] {
		if l == "" || (l[0] != ' ' && l[0] != '\t') {
			break
		}
		v += " " + strings.TrimLeft(l, " \t")
	}
	return v
}

// startLine checks the shape of a Request-Line or Status-Line (RFC 3261
// §7.1, §7.2) and returns whether it is a request, and its method.
// Refusals that still leave the message's length known (version, scheme)
// come later from startLineLater.
func startLine(l string) (req bool, method string, err error) {
	bad := &FrameError{Status: 400, Reason: "Bad start line"}
	if strings.HasPrefix(l, "SIP/") {
		parts := strings.SplitN(l, " ", 3)
		if len(parts) < 2 || len(parts[1]) != 3 || strings.Trim(parts[1], "0123456789") != "" || parts[1][0] == '0' {
			return false, "", bad
		}
		return false, "", nil
	}
	parts := strings.Split(l, " ")
	if len(parts) != 3 || !isToken(parts[0]) || parts[1] == "" || !isVersion(parts[2]) {
		return false, "", bad
	}
	if strings.ContainsAny(parts[1], "<>\"\t") {
		return false, "", bad
	}
	scheme, _, ok := strings.Cut(parts[1], ":")
	if !ok || !isScheme(scheme) {
		return false, "", bad
	}
	return true, parts[0], nil
}

func startLineLater(l string, req bool) *FrameError {
	parts := strings.Split(l, " ")
	ver := parts[len(parts)-1]
	if !req {
		ver = parts[0]
	}
	if !strings.EqualFold(ver, "SIP/2.0") {
		return &FrameError{Status: 505, Reason: "Version Not Supported"}
	}
	if req && strings.Contains(parts[1], "?") {
		// Header fields are not allowed in a Request-URI (RFC 3261 §19.1.1).
		return &FrameError{Status: 400, Reason: "Headers in Request-URI"}
	}
	if req {
		scheme, _, _ := strings.Cut(parts[1], ":")
		if !strings.EqualFold(scheme, "sip") && !strings.EqualFold(scheme, "sips") {
			return &FrameError{Status: 416, Reason: "Unsupported URI Scheme"}
		}
	}
	return nil
}

// isVersion matches SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT.
func isVersion(s string) bool {
	if len(s) < 4 || !strings.EqualFold(s[:4], "SIP/") {
		return false
	}
	maj, mnr, ok := strings.Cut(s[4:], ".")
	return ok && maj != "" && mnr != "" && strings.Trim(maj, "0123456789") == "" && strings.Trim(mnr, "0123456789") == ""
}

// isToken matches RFC 3261's token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// isScheme matches RFC 3986's scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// refusal renders the answer to a refused request (RFC 3261 §8.2.6.1: the
// Via, From, To, Call-ID and CSeq of the request are copied). Only header
// lines free of control characters are copied, so nothing a client smuggled
// in is echoed.
func refusal(msg []byte, e *FrameError) []byte {
	var out bytes.Buffer
	fmt.Fprintf(&out, "SIP/2.0 %d %s\r\n", e.Status, e.Reason)
	head := msg
	if end := bytes.Index(msg, []byte("\r\n\r\n")); end >= 0 {
		head = msg[:end]
	}
	if len(head) > maxHeaderBytes {
		head = head[:maxHeaderBytes]
	}
	lines := strings.Split(string(head), "\r\n")
	for _, l := range lines[1:] {
		name, _, ok := strings.Cut(l, ":")
		if !ok || strings.IndexFunc(l, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0 {
			continue
		}
		switch strings.ToLower(strings.TrimRight(name, " \t")) {
		case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq":
			out.WriteString(l + "\r\n")
		}
	}
	out.WriteString("Content-Length: 0\r\n\r\n")
	return out.Bytes()
}
