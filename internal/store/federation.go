package store

import (
	"context"
	"errors"
	"time"
)

// ErrDuplicate answers a forwarded message whose origin id was committed
// before: the sender's node may stop retrying it, nothing was stored again.
var ErrDuplicate = errors.New("forwarded message already stored")

// Peer is another cluster this node federates with: its domain, the CA
// pinned for it (by its DER and SHA-256 fingerprint), and where its API
// and SIP service listen.
type Peer struct {
	Domain   string
	CA       []byte // DER of the pinned CA certificate
	CASHA256 string
	API      string // host:port
	SIP      string // host:port
	// Presented is a different CA the peer's domain presented and that was
	// refused; it stays refused until an operator accepts a new CA.
	Presented   string // fingerprint, "" if none
	PresentedAt time.Time
	Added       time.Time
	DeliveredAt time.Time // last message the peer committed
	FailedAt    time.Time // last failed attempt to reach the peer
	LastError   string
	Queued      int64 // messages waiting for the peer
}

// Outbound is a message from a local device queued for a remote cluster.
type Outbound struct {
	ID         int64
	Domain     string
	SenderCert []byte // DER of the sending device's certificate
	Message
}

// Federation is the state of federation with other clusters.
type Federation interface {
	// AddPeer pins a new peer; ErrExists if the domain is known.
	AddPeer(ctx context.Context, p Peer) error
	// UpdatePeer replaces a known peer's CA and endpoints and clears a
	// presented CA; ErrNotFound if the domain is unknown.
	UpdatePeer(ctx context.Context, p Peer) error
	RemovePeer(ctx context.Context, domain string) error
	Peer(ctx context.Context, domain string) (Peer, error)
	Peers(ctx context.Context) ([]Peer, error)
	// PeerPresented records a refused CA fingerprint presented for domain.
	PeerPresented(ctx context.Context, domain, fingerprint string, now time.Time) error
	// PeerAttempt records the outcome of a delivery attempt to a peer;
	// errText "" means it committed.
	PeerAttempt(ctx context.Context, domain, errText string, now time.Time) error

	// QueueOutbound stores a message for a remote cluster durably and
	// returns its id, which the peer uses to drop a repeated forward.
	// quota > 0 caps the bytes waiting for that domain.
	QueueOutbound(ctx context.Context, o Outbound, quota int64) (int64, error)
	// OutboundFor returns up to limit of a domain's queued messages in
	// queue order.
	OutboundFor(ctx context.Context, domain string, limit int) ([]Outbound, error)
	// OutboundDone forgets a queued message the peer has committed or
	// refused for good.
	OutboundDone(ctx context.Context, id int64) error
	// OutboundDomains lists the domains with queued messages.
	OutboundDomains(ctx context.Context) ([]string, error)
	// LeaseOutbound makes holder the one node sending domain's queue
	// until until, when no other holder's lease runs past now; it reports
	// whether holder holds it. A holder renews its own lease the same way.
	LeaseOutbound(ctx context.Context, domain, holder string, until, now time.Time) (bool, error)
	// ReleaseOutbound ends holder's lease of domain's queue, if it has one.
	ReleaseOutbound(ctx context.Context, domain, holder string) error

	// AcceptForwarded stores a message forwarded by the peer origin, as
	// EnqueueMessage does, and records (origin, originID) in the same
	// transaction; a repeated forward changes nothing and returns
	// ErrDuplicate.
	AcceptForwarded(ctx context.Context, origin string, originID int64, m Message, targets []Target, quota int64) (int64, error)
}
