package store

import (
	"context"
	"time"
)

// Ops are the reads an operator's monitoring makes: cheap, and safe to run
// every few seconds on a busy node.
type Ops interface {
	// Ping answers nil when the store can serve a query now.
	Ping(ctx context.Context) error
	// QueueDepth sums the copies waiting for devices, cluster-wide.
	QueueDepth(ctx context.Context) (Queue, error)
}

// Queue is the store-and-forward backlog.
type Queue struct {
	Deliveries int64     // copies waiting for a device
	Bytes      int64     // their size
	Oldest     time.Time // when the oldest waiting copy was accepted; zero if none
}
