package sipua

import (
	"encoding/json"
	"time"
)

// EventType names what happened in a call.
type EventType string

// Event types, in the order a call normally produces them.
const (
	EventCalling     EventType = "calling"      // the INVITE is being sent (call setup time starts)
	EventRinging     EventType = "ringing"      // the peer is alerting (180/183)
	EventConnected   EventType = "connected"    // 200 OK and ACK: media starts
	EventSecure      EventType = "secure"       // ZRTP agreed SRTP keys; the SAS is known
	EventSASVerified EventType = "sas_verified" // the user confirmed the SAS
	EventHold        EventType = "hold"         // the peer put the call on hold
	EventResume      EventType = "resume"       // the peer took it off hold
	EventAlert       EventType = "alert"        // something the user must see
	EventEnded       EventType = "ended"        // the call is over
	EventWarning     EventType = "warning"      // a limitation of this call the user should know
	EventListening   EventType = "listening"    // answer: waiting for a call at Peer
	EventPath        EventType = "path"         // the media path is known or changed: Path
)

// SecureInfo describes the keys of a call once ZRTP has finished.
type SecureInfo struct {
	SAS                string `json:"sas"`
	SASType            string `json:"sas_type"`
	Cipher             string `json:"cipher"`
	Hash               string `json:"hash"`
	KeyAgreement       string `json:"key_agreement"`
	AuthTag            string `json:"auth_tag"`
	Trust              Trust  `json:"trust"`
	PreviouslyVerified bool   `json:"previously_verified"`
	CacheMatched       bool   `json:"cache_matched"` // retained secrets were used (RFC 6189 §4.3)
	PeerVerified       bool   `json:"peer_verified"` // the peer's Confirm carried the V flag
	PeerZID            string `json:"peer_zid"`
	Initiator          bool   `json:"initiator"`
	// SignedHash is what checking the peer's signed zrtp-hash found
	// (hashsig.go), SignedBy the device its signature names and
	// SignedHashDetail why it is not verified.
	SignedHash       SignedHashState `json:"signed_hash"`
	SignedBy         string          `json:"signed_by,omitempty"`
	SignedHashDetail string          `json:"signed_hash_detail,omitempty"`
	// HelloHash: whether the peer's Hello matched the (signed) zrtp-hash
	// of its SDP (RFC 6189 §8.1); AuxSecret: whether both devices'
	// messaging identities were bound into the SAS (auxsecret.go).
	HelloHash string `json:"hello_hash"`
	AuxSecret string `json:"aux_secret"`
	// Handshake is the time from our first Hello to the keys.
	Handshake time.Duration `json:"-"`
}

// Stats are a call's media counters.
type Stats struct {
	PacketsSent     uint64 `json:"packets_sent"`
	BytesSent       uint64 `json:"bytes_sent"`
	PacketsReceived uint64 `json:"packets_received"`
	BytesReceived   uint64 `json:"bytes_received"`
	// Lost counts frames missing at play-out time: rebuilt from the next
	// packet's FEC (FECRecovered) or concealed (Concealed).
	Lost         uint64 `json:"lost"`
	FECRecovered uint64 `json:"fec_recovered"`
	// RedRecovered counts lost frames played from the redundant copy in
	// the packet after them (RFC 2198), RedundantSent our packets that
	// carried one.
	RedRecovered  uint64 `json:"red_recovered"`
	RedundantSent uint64 `json:"redundant_sent"`
	Concealed     uint64 `json:"concealed"` // packet loss concealment frames
	// Bridged counts the concealed frames joined to the audio of the
	// packet after them, which had already arrived (dsp.Bridge).
	Bridged uint64 `json:"bridged"`
	// LostPackets and LossPercent are the peer's packets that never
	// arrived, as RTCP counts them (RFC 3550 §6.4.1).
	LostPackets int64   `json:"lost_packets"`
	LossPercent float64 `json:"loss_percent"`
	JitterMS    float64 `json:"jitter_ms"` // interarrival jitter, RFC 3550 §6.4.1
	// RecvPTimeMS is the audio per packet the peer sends, PlayoutDelayMS
	// our jitter buffer's delay, and DelayMS their sum: the latency that
	// packetization and buffering add to what we hear (the network and
	// the codec's few milliseconds not included).
	RecvPTimeMS    int `json:"recv_ptime_ms"`
	PlayoutDelayMS int `json:"playout_delay_ms"`
	DelayMS        int `json:"delay_ms"`
	// PeerLossPercent and PeerJitterMS are what the peer's last RTCP
	// receiver report said about our stream.
	PeerLossPercent float64 `json:"peer_loss_percent"`
	PeerJitterMS    float64 `json:"peer_jitter_ms"`
	// SendIPKbps is the bitrate we sent, with IPv4, UDP, RTP and SRTP
	// headers, per second of audio.
	SendIPKbps   float64      `json:"send_kbps_ip"`
	Send         SendSettings `json:"send"`
	RTCPSent     uint64       `json:"rtcp_sent"`
	RTCPReceived uint64       `json:"rtcp_received"`
	AuthFailures uint64       `json:"auth_failures"`
	ZRTPSent     uint64       `json:"zrtp_sent"`
	ZRTPReceived uint64       `json:"zrtp_received"`
	// Path is the media path: "host", "srflx" or "relay" (ICE), and
	// ICE says whether ICE chose it.
	Path string `json:"path,omitempty"`
	ICE  bool   `json:"ice"`
}

// SendSettings are the codec settings of what this side sends.
type SendSettings struct {
	Codec      string `json:"codec"`
	PTimeMS    int    `json:"ptime_ms"`
	BitrateBPS int    `json:"bitrate,omitempty"` // Opus target
	Bandwidth  string `json:"bandwidth,omitempty"`
	Complexity int    `json:"complexity,omitempty"`
	FEC        bool   `json:"fec"`
	// LossHint is the loss in percent the Opus encoder protects against,
	// following the peer's reports.
	LossHint int `json:"loss_hint"`
	// Redundancy: both sides offered redundant audio (RFC 2198), sent
	// while the peer reports enough loss.
	Redundancy bool `json:"redundancy"`
}

// Event is one thing a call reports.
type Event struct {
	Type EventType
	Time time.Time
	// Reason explains alert and ended events.
	Reason string
	// Peer, Codec and RemoteRTP describe a connected call.
	Peer, Codec, RemoteRTP string
	Secure                 *SecureInfo // secure
	Stats                  *Stats      // ended

	// Path is the media path of a path event: host, srflx or relay.
	Path string
}

// MarshalJSON renders the event as one flat JSON object with an "event" key.
func (e Event) MarshalJSON() ([]byte, error) {
	m := map[string]any{"event": string(e.Type), "time": e.Time.UTC().Format(time.RFC3339Nano)}
	if e.Reason != "" {
		m["reason"] = e.Reason
	}
	if e.Peer != "" {
		m["peer"] = e.Peer
	}
	if e.Codec != "" {
		m["codec"] = e.Codec
	}
	if e.RemoteRTP != "" {
		m["remote_rtp"] = e.RemoteRTP
	}
	if e.Path != "" {
		m["path"] = e.Path
	}
	if e.Secure != nil {
		b, err := json.Marshal(e.Secure)
		if err != nil {
			return nil, err
		}
		var sm map[string]any
		if err := json.Unmarshal(b, &sm); err != nil {
			return nil, err
		}
		for k, v := range sm {
			m[k] = v
		}
		m["handshake_ms"] = float64(e.Secure.Handshake.Microseconds()) / 1000
	}
	if e.Stats != nil {
		m["stats"] = e.Stats
	}
	return json.Marshal(m)
}
