package ratchet

import (
	"fmt"
	"sync"
)

// DeviceID names a device ("user@domain/device"); the ratchet treats it as
// an opaque string.
type DeviceID string

// TrustStore pins each peer device's identity key on first use (the lime
// model: untrusted until verified, never silently replaced). A persistent
// implementation lives in the client's encrypted database.
type TrustStore interface {
	// LoadIdentity returns the pinned identity of dev; found is false when
	// none is pinned.
	LoadIdentity(dev DeviceID) (key IdentityKey, found bool, err error)
	// StoreIdentity pins key for dev, replacing any earlier pin. Callers
	// replace a pin only after the user has accepted the change.
	StoreIdentity(dev DeviceID, key IdentityKey) error
}

// IdentityChangedError carries both fingerprints of a changed identity.
// It matches ErrIdentityChanged with errors.Is.
type IdentityChangedError struct {
	Device    DeviceID
	Pinned    string // fingerprint of the pinned key
	Presented string // fingerprint of the new key
}

func (e *IdentityChangedError) Error() string {
	return fmt.Sprintf("ratchet: identity key of %s changed from %.16s… to %.16s…; verify it before trusting it",
		e.Device, e.Pinned, e.Presented)
}

// Is makes errors.Is(err, ErrIdentityChanged) hold.
func (e *IdentityChangedError) Is(target error) bool { return target == ErrIdentityChanged }

// CheckIdentity verifies key's binding signature, pins it if dev has no
// pinned key, and returns an *IdentityChangedError if dev's pinned key
// differs. Call it on every bundle before InitiateSession and on every
// initial message before AcceptSession.
func CheckIdentity(ts TrustStore, dev DeviceID, key IdentityKey) error {
	if err := key.Verify(); err != nil {
		return fmt.Errorf("check identity of %s: %w", dev, err)
	}
	pinned, found, err := ts.LoadIdentity(dev)
	if err != nil {
		return fmt.Errorf("check identity of %s: %w", dev, err)
	}
	if !found {
		if err := ts.StoreIdentity(dev, key); err != nil {
			return fmt.Errorf("pin identity of %s: %w", dev, err)
		}
		return nil
	}
	if !pinned.Equal(key) {
		return &IdentityChangedError{Device: dev, Pinned: pinned.Fingerprint(), Presented: key.Fingerprint()}
	}
	return nil
}

// MemoryTrustStore is a TrustStore in memory, safe for concurrent use.
type MemoryTrustStore struct {
	mu   sync.Mutex
	pins map[DeviceID]IdentityKey
}

// NewMemoryTrustStore returns an empty store.
func NewMemoryTrustStore() *MemoryTrustStore {
	return &MemoryTrustStore{pins: map[DeviceID]IdentityKey{}}
}

// LoadIdentity implements TrustStore.
func (m *MemoryTrustStore) LoadIdentity(dev DeviceID) (IdentityKey, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.pins[dev]
	return k, ok, nil
}

// StoreIdentity implements TrustStore.
func (m *MemoryTrustStore) StoreIdentity(dev DeviceID, key IdentityKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pins[dev] = key
	return nil
}
