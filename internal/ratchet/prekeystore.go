package ratchet

import (
	"crypto/ecdh"
	"crypto/mlkem"
	"fmt"
	"sync"
)

// MemoryPrekeyStore is a PrekeyStore in memory, for tests and as the model
// for a persistent one. It is safe for concurrent use.
type MemoryPrekeyStore struct {
	mu      sync.Mutex
	signed  map[uint32]*ecdh.PrivateKey
	oneTime map[uint32]*ecdh.PrivateKey
	pq      map[uint32]*PQPrekeyPair
}

// NewMemoryPrekeyStore returns an empty store.
func NewMemoryPrekeyStore() *MemoryPrekeyStore {
	return &MemoryPrekeyStore{
		signed:  map[uint32]*ecdh.PrivateKey{},
		oneTime: map[uint32]*ecdh.PrivateKey{},
		pq:      map[uint32]*PQPrekeyPair{},
	}
}

// AddSignedPrekey stores a signed prekey.
func (m *MemoryPrekeyStore) AddSignedPrekey(k *SignedPrekeyPair) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signed[k.ID] = k.Key
}

// AddOneTimePrekey stores a one-time prekey.
func (m *MemoryPrekeyStore) AddOneTimePrekey(k *OneTimePrekeyPair) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.oneTime[k.ID] = k.Key
}

// AddPQPrekey stores an ML-KEM prekey.
func (m *MemoryPrekeyStore) AddPQPrekey(k *PQPrekeyPair) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pq[k.ID] = k
}

// OneTimePrekeys reports how many one-time prekeys (X25519 and ML-KEM) remain.
func (m *MemoryPrekeyStore) OneTimePrekeys() (x25519, pq int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.pq {
		if !k.LastResort {
			pq++
		}
	}
	return len(m.oneTime), pq
}

// SignedPrekey implements PrekeyStore.
func (m *MemoryPrekeyStore) SignedPrekey(id uint32) (*ecdh.PrivateKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.signed[id]; ok {
		return k, nil
	}
	return nil, ErrPrekeyNotFound
}

// OneTimePrekey implements PrekeyStore.
func (m *MemoryPrekeyStore) OneTimePrekey(id uint32) (*ecdh.PrivateKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.oneTime[id]; ok {
		return k, nil
	}
	return nil, ErrPrekeyNotFound
}

// PQPrekey implements PrekeyStore.
func (m *MemoryPrekeyStore) PQPrekey(id uint32) (*mlkem.DecapsulationKey768, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.pq[id]; ok {
		return k.Key, nil
	}
	return nil, ErrPrekeyNotFound
}

// UsePrekeys implements PrekeyStore.
func (m *MemoryPrekeyStore) UsePrekeys(oneTimeID uint32, hasOneTime bool, pqID uint32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	pq, ok := m.pq[pqID]
	if !ok {
		return fmt.Errorf("pq prekey %d: %w", pqID, ErrPrekeyNotFound)
	}
	if hasOneTime {
		if _, ok := m.oneTime[oneTimeID]; !ok {
			return fmt.Errorf("one-time prekey %d: %w", oneTimeID, ErrPrekeyNotFound)
		}
		delete(m.oneTime, oneTimeID)
	}
	if !pq.LastResort {
		delete(m.pq, pqID)
	}
	return nil
}
