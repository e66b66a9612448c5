package stp

import (
	"fmt"
	"sync"
	"time"
)

// ReplayGuard remembers the (sender, nonce) pairs of accepted messages
// (draft §2.3: randomNonce is the replay protection). Open consults it only
// after the message authenticated, so a forger cannot fill it.
type ReplayGuard interface {
	// Seen records (sender, nonce) for a message sent at sent and reports
	// whether the pair was recorded before. It only needs to remember
	// pairs for the receiver's MaxAge+MaxSkew: older messages are refused
	// by the timestamp window.
	Seen(sender string, nonce uint32, sent time.Time) (bool, error)
}

// MemoryReplayGuard is an in-memory ReplayGuard that forgets pairs whose
// message is older than its window.
type MemoryReplayGuard struct {
	window time.Duration
	now    func() time.Time

	mu        sync.Mutex
	seen      map[replayKey]time.Time
	lastPrune time.Time
}

type replayKey struct {
	sender string
	nonce  uint32
}

// NewMemoryReplayGuard returns a guard remembering pairs for window; now
// nil means time.Now.
func NewMemoryReplayGuard(window time.Duration, now func() time.Time) *MemoryReplayGuard {
	if now == nil {
		now = time.Now
	}
	return &MemoryReplayGuard{window: window, now: now, seen: make(map[replayKey]time.Time)}
}

// Seen implements ReplayGuard.
func (g *MemoryReplayGuard) Seen(sender string, nonce uint32, sent time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if now.Sub(g.lastPrune) > g.window/16 {
		for k, t := range g.seen {
			if now.Sub(t) > g.window {
				delete(g.seen, k)
			}
		}
		g.lastPrune = now
	}
	k := replayKey{sender, nonce}
	if _, ok := g.seen[k]; ok {
		return true, nil
	}
	g.seen[k] = sent
	return false, nil
}

// header is what STPSimple and STPSimpleGroup share for the opened message.
type header interface {
	GetAmpType() int32
	GetAmpVersion() int32
	GetMessageSentMiliUTC() uint64
	GetRandomNonce() uint32
	GetSender() string
	GetDestination() string
	GetCertificateVersion() string
}

// accept builds the opened message of an authenticated STP message and
// applies the time window and the replay guard.
func accept(p Protocol, h header, seq *uint32, payload []byte, r *Receiver) (*Message, error) {
	m := &Message{
		Protocol:           p,
		AmpType:            h.GetAmpType(),
		AmpVersion:         h.GetAmpVersion(),
		SequenceNumber:     seq,
		Sent:               time.UnixMilli(int64(h.GetMessageSentMiliUTC())),
		Nonce:              h.GetRandomNonce(),
		Sender:             h.GetSender(),
		Destination:        h.GetDestination(),
		CertificateVersion: h.GetCertificateVersion(),
		Payload:            payload,
	}
	if err := checkFresh(r, m); err != nil {
		return nil, err
	}
	return m, nil
}

// checkFresh applies the timestamp window and the replay guard to an
// authenticated message.
func checkFresh(r *Receiver, m *Message) error {
	maxAge, maxSkew := r.MaxAge, r.MaxSkew
	if maxAge == 0 {
		maxAge = DefaultMaxAge
	}
	if maxSkew == 0 {
		maxSkew = DefaultMaxSkew
	}
	now := r.now()
	if m.Sent.Before(now.Add(-maxAge)) || m.Sent.After(now.Add(maxSkew)) {
		return fmt.Errorf("message from %s sent %v, now %v: %w", m.Sender, m.Sent.UTC(), now.UTC(), ErrTimestamp)
	}
	if r.Replay == nil {
		return nil
	}
	seen, err := r.Replay.Seen(m.Sender, m.Nonce, m.Sent)
	if err != nil {
		return fmt.Errorf("replay guard: %w", err)
	}
	if seen {
		return fmt.Errorf("message from %s, nonce %d: %w", m.Sender, m.Nonce, ErrReplay)
	}
	return nil
}
