package sdk

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/client"
)

// ErrNoRelay: the home cluster runs no STUN/TURN relay and names none;
// calls can take direct paths only.
var ErrNoRelay = client.ErrNoRelay

// RelayCredentials are short-lived credentials for the home cluster's
// STUN/TURN relays (RFC 8489, RFC 8656), in the TURN REST format (username
// EXPIRY:USER, password base64(HMAC-SHA1(secret, username))), valid on every
// URI until Expires. The relay forwards only what the devices send: call
// media stays SRTP, encrypted end to end.
type RelayCredentials struct {
	// URIs are TURN URIs (RFC 7065): turn:HOST:PORT?transport=udp,
	// turn:HOST:PORT?transport=tcp, turns:HOST:PORT?transport=tcp.
	URIs []string `json:"uris"`
	// STUN are STUN URIs (RFC 7064): stun:HOST:PORT.
	STUN     []string  `json:"stun"`
	Username string    `json:"username"`
	Password string    `json:"password"`
	Expires  time.Time `json:"expires"`
}

// RelayCredentials fetches relay credentials for this device's account.
// Fetch them before each call: they expire (12 hours by default).
func (d *Device) RelayCredentials(ctx context.Context) (RelayCredentials, error) {
	c, err := d.p.TURNCredentials(ctx)
	if err != nil {
		return RelayCredentials{}, fmt.Errorf("relay: %w", err)
	}
	return RelayCredentials{URIs: c.URIs, STUN: c.STUN, Username: c.Username, Password: c.Password, Expires: c.Expires}, nil
}

// ICEServers are the credentials as a call's ICE servers
// (CallOptions.ICEServers): the STUN URIs and the turn: URIs. The turns:
// URIs are left out: the ICE agent checks a TURN server's TLS certificate
// against the system's roots, not the cluster's CA.
func (r RelayCredentials) ICEServers() ICEServers {
	urls := slices.Clone(r.STUN)
	for _, u := range r.URIs {
		if strings.HasPrefix(u, "turn:") {
			urls = append(urls, u)
		}
	}
	return ICEServers{URLs: urls, Username: r.Username, Password: r.Password}
}
