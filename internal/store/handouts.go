package store

import (
	"context"
	"time"
)

// Handouts counts one-time prekeys handed out, in the store, so that every
// node of a cluster counts the same handouts and switching nodes gains a
// requester nothing.
type Handouts interface {
	// CountHandout records a handout of target's one-time keys to
	// requester at now, unless the handouts recorded within window before
	// now already reach perPair (this requester and target) or perTarget
	// (every requester of target); it reports whether it recorded it.
	// Checking and recording are one step: parallel requests on any nodes
	// cannot pass the limits together. Older handouts are forgotten.
	CountHandout(ctx context.Context, requester, target int64, now time.Time, window time.Duration, perPair, perTarget int) (bool, error)
}
