package api

import "time"

// PathTURN hands an enrolled device short-lived relay credentials (GET,
// mutual TLS).
const PathTURN = "/v1/turn"

// CodeRelayUnavailable: the cluster runs no relay and names none.
const CodeRelayUnavailable = "relay_unavailable"

// TURNCredentials are credentials for the cluster's STUN/TURN relays in the
// TURN REST format (username EXPIRY:USER, password
// base64(HMAC-SHA1(secret, username))), valid on every URI listed until
// Expires.
type TURNCredentials struct {
	URIs     []string  `json:"uris"` // turn: and turns: URIs (RFC 7065)
	STUN     []string  `json:"stun"` // stun: URIs (RFC 7064)
	Username string    `json:"username"`
	Password string    `json:"password"`
	TTL      int       `json:"ttl"` // seconds from issue
	Expires  time.Time `json:"expires"`
}
