package server

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/phonex/phonex/internal/server/directory"
)

func encodeDirectory(d directory.Limits, b *bytes.Buffer) {
	fmt.Fprintf(b, "\n# Directory (docs/directory.md): a number claim's code lives directory_claim_ttl\n# and allows directory_claim_attempts tries; directory_open_claims claims at once per\n# account. A publication from a device whose key is not published waits\n# directory_replace_delay, during which the account's other devices can cancel it.\n# Each device may make directory_query_budget lookups and discovered hashes per\n# directory_query_window.\n")
	fmt.Fprintf(b, "directory_claim_ttl = %s\ndirectory_claim_attempts = %d\ndirectory_open_claims = %d\ndirectory_replace_delay = %s\ndirectory_query_budget = %d\ndirectory_query_window = %s\n",
		d.ClaimTTL, d.MaxAttempts, d.MaxOpen, d.ReplaceDelay, d.QueryBudget, d.QueryWindow)
}

// parseDirectory sets the setting k if it belongs to the directory; ok is
// false if not.
func parseDirectory(d *directory.Limits, k, v string) (ok bool, err error) {
	switch k {
	case "directory_claim_ttl":
		d.ClaimTTL, err = time.ParseDuration(v)
	case "directory_claim_attempts":
		d.MaxAttempts, err = strconv.Atoi(v)
	case "directory_open_claims":
		d.MaxOpen, err = strconv.Atoi(v)
	case "directory_replace_delay":
		d.ReplaceDelay, err = time.ParseDuration(v)
	case "directory_query_budget":
		d.QueryBudget, err = strconv.Atoi(v)
	case "directory_query_window":
		d.QueryWindow, err = time.ParseDuration(v)
	default:
		return false, nil
	}
	return true, err
}
