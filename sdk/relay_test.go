package sdk_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/phonex/phonex/sdk"
)

// TestRelayCredentialsUnavailable: the test node runs API and SIP only, so a
// device asking for relay credentials gets ErrNoRelay (the positive path,
// with a relay, runs end to end in internal/e2e TestRelayInterop).
func TestRelayCredentialsUnavailable(t *testing.T) {
	d := enrolled("relayless@example.org", "laptop")
	defer d.Close()
	_, err := d.RelayCredentials(context.Background())
	if !errors.Is(err, sdk.ErrNoRelay) {
		t.Fatalf("%v, want ErrNoRelay", err)
	}
}

func TestRelayCredentialsICEServers(t *testing.T) {
	rc := sdk.RelayCredentials{URIs: []string{"turn:192.0.2.1:3478?transport=udp", "turn:192.0.2.1:3478?transport=tcp", "turns:192.0.2.1:5349?transport=tcp"},
		STUN: []string{"stun:192.0.2.1:3478"}, Username: "1796192064:alpha@example.org", Password: "pw"}
	s := rc.ICEServers()
	if got := strings.Join(s.URLs, " "); got != "stun:192.0.2.1:3478 turn:192.0.2.1:3478?transport=udp turn:192.0.2.1:3478?transport=tcp" ||
		s.Username != rc.Username || s.Password != rc.Password {
		t.Fatalf("%+v", s)
	}
}
