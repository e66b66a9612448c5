package federation

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"

	"github.com/phonex/phonex/internal/store"
)

// Service is this node's side of federation: the pins, the queue of
// messages for peers, and the client of peers' APIs.
type Service struct {
	Domain string // this cluster's
	St     store.Store
	Pins   *Pins
	Queue  *Queue
	Client *Client
	Node   tls.Certificate // this node's certificate, its CA after it
	Log    *slog.Logger
}

// New makes the service; the proxy sets Queue.Send and starts the queue.
func New(domain string, st store.Store, node tls.Certificate, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pins := &Pins{St: st, Log: log}
	return &Service{Domain: domain, St: st, Pins: pins, Node: node, Log: log,
		Queue:  &Queue{St: st, Log: log},
		Client: &Client{Pins: pins, Node: node}}
}

// Known reports whether domain is a configured peer.
func (s *Service) Known(ctx context.Context, domain string) (bool, error) {
	if s == nil || domain == s.Domain {
		return false, nil
	}
	_, err := s.St.Peer(ctx, domain)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
