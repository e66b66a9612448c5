package e2e

import (
	"testing"

	"github.com/phonex/phonex/internal/testpeer"
)

// requirePeer returns the path of a third-party peer the test runs against
// ("sipp", "stunnel", "linphonec", "kamailio", "libopus"). When it is
// missing the test is skipped with the reason, or fails when CI is set.
func requirePeer(t *testing.T, name string) string {
	t.Helper()
	return testpeer.Require(t, name)
}
