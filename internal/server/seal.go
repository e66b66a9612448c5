package server

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SealKeyFile holds the node's sealing key. It is kept apart from the
// database so that a copy of the database alone gives no OPRF key, and thus
// nothing to test a password guess against.
const SealKeyFile = "seal.key"

// sealer encrypts server-held secrets (OPRF keys) at rest with AES-256-GCM.
type sealer struct{ aead cipher.AEAD }

func loadSealer(dir string, create bool) (*sealer, error) {
	path := filepath.Join(dir, SealKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		key = make([]byte, 32)
		rand.Read(key)
		if err = os.WriteFile(path, key, 0o600); err != nil {
			return nil, fmt.Errorf("write sealing key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("read sealing key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("sealing key %s: %d bytes, want 32", path, len(key))
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	return &sealer{aead}, nil
}

// seal encrypts with a fresh random 96-bit nonce; label binds the blob to its
// row so blobs cannot be swapped between accounts or devices.
func (s *sealer) seal(plain []byte, label string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, plain, []byte(label))
}

func (s *sealer) open(blob []byte, label string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(blob) < n+s.aead.Overhead() {
		return nil, errors.New("sealed blob too short")
	}
	p, err := s.aead.Open(nil, blob[:n], blob[n:], []byte(label))
	if err != nil {
		return nil, fmt.Errorf("open sealed %s: %w", label, err)
	}
	return p, nil
}
