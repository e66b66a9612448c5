package sdk_test

import (
	"context"
	"errors"
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
