package sipua

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"

	"github.com/phonex/phonex/internal/ice"
)

// Codec is one payload format of the audio stream, as an a=rtpmap line
// names it (RFC 4566 §6).
type Codec struct {
	Name     string // "opus", "PCMU", "PCMA" or "telephone-event"
	PT       uint8
	Rate     int
	Channels int
	Fmtp     string
}

// String renders the codec as rtpmap does: "opus/48000/2".
func (c Codec) String() string {
	s := c.Name + "/" + strconv.Itoa(c.Rate)
	if c.Channels > 1 {
		s += "/" + strconv.Itoa(c.Channels)
	}
	return s
}

// Codecs this user agent can put in an offer, in preference order. Opus uses
// the dynamic payload type 96 with two channels in rtpmap as RFC 7587 §7
// requires; PCMU and PCMA have their static types (RFC 3551 Table 4).
var (
	CodecOpus           = Codec{Name: "opus", PT: 96, Rate: 48000, Channels: 2, Fmtp: "useinbandfec=1"}
	CodecPCMU           = Codec{Name: "PCMU", PT: 0, Rate: 8000, Channels: 1}
	CodecPCMA           = Codec{Name: "PCMA", PT: 8, Rate: 8000, Channels: 1}
	CodecTelephoneEvent = Codec{Name: "telephone-event", PT: 101, Rate: 8000, Channels: 1, Fmtp: "0-15"}
)

// Direction is the media direction attribute of RFC 3264 §5.1.
type Direction string

// Media directions.
const (
	SendRecv Direction = "sendrecv"
	SendOnly Direction = "sendonly"
	RecvOnly Direction = "recvonly"
	Inactive Direction = "inactive"
)

// Transport profiles of the audio m-line.
const (
	ProtoAVP  = "RTP/AVP"
	ProtoSAVP = "RTP/SAVP"
)

// Media is the audio stream of a session description: what an offer or an
// answer says about where and how to send audio.
type Media struct {
	Addr      netip.Addr // connection address (c=)
	Port      int        // RTP port; 0 means the stream was refused (RFC 3264 §6)
	Proto     string     // ProtoAVP or ProtoSAVP
	Codecs    []Codec    // in the sender's order of preference
	Direction Direction
	// ZRTPHash is the a=zrtp-hash value, "1.10 <64 hex digits>", or "" when
	// the peer did not signal ZRTP (RFC 6189 §8.1).
	ZRTPHash string
	// SDES is set when the description carries a=crypto keys (RFC 4568):
	// keys a signalling server can read, which this user agent never uses.
	SDES bool
	// SessionID and Version are the o= line's (RFC 4566 §5.2); a new
	// description of the same session increments Version.
	SessionID, Version uint64
	// PTime is a=ptime (RFC 4566 §6): the audio per packet this side sends
	// and prefers to receive; zero when absent.
	PTime time.Duration
	// ICE holds the description's ICE credentials and candidates (RFC 8839),
	// nil when it has none; Addr and Port are then the default candidate.
	ICE *ice.Params
	// ICEMismatch: a=ice-mismatch, or an offer whose default address is
	// none of its candidates (RFC 8839 §5.4); ICE is not used.
	ICEMismatch bool
	// RTCPMux is a=rtcp-mux (RFC 5761 §5.1.1): RTCP shares the RTP port.
	// An answer carries it only when the offer did.
	RTCPMux bool
	// HashSig is the signature of ZRTPHash (hashsig.go); nil when absent.
	// HashSigErr is why an attribute present could not be read: the
	// call goes on and reports the signature invalid.
	HashSig    *HashSig
	HashSigErr error
}

// Errors returned while reading a session description.
var (
	ErrNoAudio     = errors.New("sipua: no audio stream in the session description")
	ErrNoCodec     = errors.New("sipua: no codec in common")
	ErrBadZRTPHash = errors.New("sipua: malformed a=zrtp-hash")
	ErrBadSDP      = errors.New("sipua: malformed session description")
)

// OnHold reports whether the description stops the peer sending to us:
// sendonly or inactive, or the RFC 2543 style c=0.0.0.0 (RFC 3264 §8.4).
func (m *Media) OnHold() bool {
	return m.Direction == SendOnly || m.Direction == Inactive || m.Addr.IsUnspecified()
}

// Marshal encodes the description as SDP (RFC 4566).
func (m *Media) Marshal() ([]byte, error) {
	if !m.Addr.IsValid() {
		return nil, fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	addrType := "IP4"
	if m.Addr.Is6() && !m.Addr.Is4In6() {
		addrType = "IP6"
	}
	addr := m.Addr.Unmap().String()
	proto := m.Proto
	if proto == "" {
		proto = ProtoAVP
	}
	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: m.Port},
			Protos: strings.Split(proto, "/"),
		},
	}
	for _, c := range m.Codecs {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.PT)))
	}
	for _, c := range m.Codecs {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", strconv.Itoa(int(c.PT))+" "+c.String()))
		if c.Fmtp != "" {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("fmtp", strconv.Itoa(int(c.PT))+" "+c.Fmtp))
		}
	}
	if m.ZRTPHash != "" {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("zrtp-hash", m.ZRTPHash))
	}
	if m.HashSig != nil && m.ZRTPHash != "" {
		md.Attributes = append(md.Attributes, sdp.NewAttribute(HashSigAttr, m.HashSig.String()))
	}
	if m.PTime > 0 {
		md.Attributes = append(md.Attributes, sdp.NewAttribute("ptime", strconv.Itoa(int(m.PTime/time.Millisecond))))
	}
	if m.RTCPMux {
		md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute("rtcp-mux"))
	}
	dir := m.Direction
	if dir == "" {
		dir = SendRecv
	}
	md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute(string(dir)))
	md.Attributes = append(md.Attributes, iceAttributes(m)...)
	s := &sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "phonex", SessionID: m.SessionID, SessionVersion: m.Version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: addr,
		},
		SessionName:           "phonex",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: addr}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
		MediaDescriptions:     []*sdp.MediaDescription{md},
	}
	return s.Marshal()
}

// ParseMedia reads the first audio stream of a session description.
func ParseMedia(b []byte) (*Media, error) {
	var s sdp.SessionDescription
	if err := s.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	var md *sdp.MediaDescription
	for _, d := range s.MediaDescriptions {
		if d != nil && d.MediaName.Media == "audio" {
			md = d
			break
		}
	}
	if md == nil {
		return nil, ErrNoAudio
	}
	m := &Media{
		Port:      md.MediaName.Port.Value,
		Proto:     strings.Join(md.MediaName.Protos, "/"),
		Direction: SendRecv,
		SessionID: s.Origin.SessionID,
		Version:   s.Origin.SessionVersion,
	}
	if m.Port < 0 || m.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrBadSDP, m.Port)
	}
	// A media-level c= overrides the session-level one (RFC 4566 §5.7).
	ci := s.ConnectionInformation
	if md.ConnectionInformation != nil {
		ci = md.ConnectionInformation
	}
	if ci == nil || ci.Address == nil {
		return nil, fmt.Errorf("%w: no connection address", ErrBadSDP)
	}
	a, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: connection address %q (only IP addresses are supported)", ErrBadSDP, ci.Address.Address)
	}
	m.Addr = a

	// Session-level attributes first, so media-level ones override them.
	attrs := append(append([]sdp.Attribute(nil), s.Attributes...), md.Attributes...)
	rtpmap := map[uint8]Codec{}
	fmtp := map[uint8]string{}
	for _, at := range attrs {
		switch at.Key {
		case "zrtp-hash":
			h, err := parseZRTPHash(at.Value)
			if err != nil {
				return nil, err
			}
			m.ZRTPHash = h
		case HashSigAttr:
			if m.HashSig != nil || m.HashSigErr != nil {
				m.HashSig, m.HashSigErr = nil, fmt.Errorf("%w: more than one", ErrBadHashSig)
				continue
			}
			m.HashSig, m.HashSigErr = ParseHashSig(at.Value)
		case "crypto":
			m.SDES = true
		case "rtcp-mux":
			m.RTCPMux = true
		case "ptime":
			// Opus packets hold 2.5 to 120 ms (RFC 6716 §3.2.5); other
			// values are ignored rather than failing the call.
			if ms, err := strconv.Atoi(strings.TrimSpace(at.Value)); err == nil && ms > 0 && ms <= 120 {
				m.PTime = time.Duration(ms) * time.Millisecond
			}
		case string(SendRecv), string(SendOnly), string(RecvOnly), string(Inactive):
			m.Direction = Direction(at.Key)
		case "rtpmap":
			pt, c, err := parseRTPMap(at.Value)
			if err != nil {
				return nil, err
			}
			rtpmap[pt] = c
		case "fmtp":
			ptStr, rest, _ := strings.Cut(at.Value, " ")
			if pt, err := strconv.ParseUint(ptStr, 10, 7); err == nil {
				fmtp[uint8(pt)] = strings.TrimSpace(rest)
			}
		}
	}
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			continue // not an RTP payload type: ignore, do not fail the call
		}
		c, ok := rtpmap[uint8(pt)]
		if !ok {
			// Static payload types need no rtpmap (RFC 3551 Table 4).
			switch pt {
			case 0:
				c = CodecPCMU
			case 8:
				c = CodecPCMA
			default:
				continue
			}
		}
		c.PT = uint8(pt)
		c.Fmtp = fmtp[uint8(pt)]
		m.Codecs = append(m.Codecs, c)
	}
	if m.ICE, m.ICEMismatch, err = parseICE(attrs, netip.AddrPortFrom(m.Addr.Unmap(), uint16(m.Port))); err != nil {
		return nil, err
	}
	return m, nil
}

// parseZRTPHash checks an a=zrtp-hash value: a 4-character version, a space
// and 64 hex digits (RFC 6189 §8.1). It returns the value normalised to
// lower case.
func parseZRTPHash(v string) (string, error) {
	ver, hash, ok := strings.Cut(strings.TrimSpace(v), " ")
	hash = strings.TrimSpace(hash)
	if !ok || len(ver) != 4 || len(hash) != 64 {
		return "", fmt.Errorf("%w: %q", ErrBadZRTPHash, v)
	}
	for _, r := range hash {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return "", fmt.Errorf("%w: %q", ErrBadZRTPHash, v)
		}
	}
	return ver + " " + strings.ToLower(hash), nil
}

func parseRTPMap(v string) (uint8, Codec, error) {
	ptStr, enc, ok := strings.Cut(strings.TrimSpace(v), " ")
	pt, err := strconv.ParseUint(ptStr, 10, 7)
	if !ok || err != nil {
		return 0, Codec{}, fmt.Errorf("%w: rtpmap %q", ErrBadSDP, v)
	}
	parts := strings.Split(strings.TrimSpace(enc), "/")
	if len(parts) < 2 || parts[0] == "" {
		return 0, Codec{}, fmt.Errorf("%w: rtpmap %q", ErrBadSDP, v)
	}
	rate, err := strconv.Atoi(parts[1])
	if err != nil || rate <= 0 {
		return 0, Codec{}, fmt.Errorf("%w: rtpmap %q", ErrBadSDP, v)
	}
	ch := 1
	if len(parts) > 2 {
		if ch, err = strconv.Atoi(parts[2]); err != nil || ch <= 0 {
			return 0, Codec{}, fmt.Errorf("%w: rtpmap %q", ErrBadSDP, v)
		}
	}
	return uint8(pt), Codec{Name: parts[0], PT: uint8(pt), Rate: rate, Channels: ch}, nil
}

// same reports whether two codecs are the same format, ignoring payload
// types (encoding names are case-insensitive, RFC 4566 §6).
func same(a, b Codec) bool {
	if !strings.EqualFold(a.Name, b.Name) || a.Rate != b.Rate {
		return false
	}
	// Opus is always signalled with two channels (RFC 7587 §7).
	return a.Channels == b.Channels || strings.EqualFold(a.Name, "opus")
}

// Answer builds the answer to offer (RFC 3264 §6): the first codec of the
// offer that is also in local, with the offer's payload type; the offer's
// telephone-event if local has one; the same transport profile; the
// direction mirrored. local holds our address, port, codecs and zrtp-hash.
// It returns the answer and the codec to send and receive.
func Answer(offer *Media, local Media) (*Media, Codec, error) {
	ans := local
	ans.Codecs = nil
	ans.Proto = offer.Proto
	ans.RTCPMux = offer.RTCPMux && local.RTCPMux
	var chosen *Codec
	var te *Codec
	for _, oc := range offer.Codecs {
		for _, lc := range local.Codecs {
			if !same(oc, lc) {
				continue
			}
			c := oc
			if strings.EqualFold(c.Name, CodecTelephoneEvent.Name) {
				if te == nil {
					te = &c
				}
			} else if isRED(c) {
				continue // added below, over the codec chosen
			} else if chosen == nil {
				chosen = &c
			}
		}
	}
	if chosen == nil {
		return nil, Codec{}, ErrNoCodec
	}
	ans.Codecs = append(ans.Codecs, *chosen)
	if te != nil {
		ans.Codecs = append(ans.Codecs, *te)
	}
	if r, ok := redFor(offer, chosen.PT); ok && strings.EqualFold(chosen.Name, CodecOpus.Name) {
		if slices.ContainsFunc(local.Codecs, isRED) {
			ans.Codecs = append(ans.Codecs, r)
		}
	}
	switch offer.Direction {
	case SendOnly:
		ans.Direction = RecvOnly
	case RecvOnly:
		ans.Direction = SendOnly
	case Inactive:
		ans.Direction = Inactive
	default:
		ans.Direction = SendRecv
	}
	if offer.Addr.IsUnspecified() && ans.Direction == SendRecv {
		ans.Direction = RecvOnly
	}
	return &ans, *chosen, nil
}

// Chosen returns the codec an answer picked from our offer: the first codec
// of the answer, other than telephone-event, that we offered (RFC 3264 §7).
func Chosen(offered []Codec, answer *Media) (Codec, error) {
	for _, ac := range answer.Codecs {
		if strings.EqualFold(ac.Name, CodecTelephoneEvent.Name) || isRED(ac) {
			continue
		}
		for _, oc := range offered {
			if same(ac, oc) {
				return ac, nil
			}
		}
	}
	return Codec{}, ErrNoCodec
}
