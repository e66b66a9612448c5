package sdk

import (
	"fmt"

	"github.com/phonex/phonex/internal/client"
)

// A cluster of several nodes has several API addresses. A profile keeps
// them in order of preference (EnrollConfig.Server may list them
// separated by commas); a device uses one at a time and moves to the next
// when the one in use cannot be reached: an API call whose connection is
// refused, or Listen's registration refresh on a lost connection, after
// which the new node delivers every message still waiting
// (docs/operations.md, "Client failover").

// Servers lists the API addresses of the profile in dir, in order of
// preference. It needs no password.
func Servers(dir string) ([]string, error) {
	s, err := client.Servers(dir)
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	return s, nil
}

// SetServers replaces the API addresses of the profile in dir (nodes added
// to or removed from the cluster); the first is tried first. The cluster's
// CA stays pinned, so every address must present a certificate of the
// same cluster. It needs no password; a running Listen reads the new list
// when it next opens the profile.
func SetServers(dir string, servers []string) error {
	if err := client.SetServers(dir, servers); err != nil {
		return fmt.Errorf("set servers: %w", err)
	}
	return nil
}
