package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/phonex/phonex/internal/kdf"
)

// Files of a profile directory. Only meta.json is readable without the
// password, and it names no identity and no contact.
const (
	MetaFile     = "profile.json"
	KeystoreFile = "keystore.p12"
	KexFile      = "kex.p12"
	DBFile       = "data.db"
	CAFile       = "ca.pem"
	stagedSuffix = ".new"
)

// Meta is the unencrypted part of a profile: where the home cluster is, the
// opaque handle the device unlocks with, and the KDF salts.
type Meta struct {
	Version int    `json:"version"`
	Server  string `json:"server"`
	// Servers are more API addresses of the same cluster, tried in turn
	// when the one in use cannot be reached (failover.go).
	Servers  []string   `json:"servers,omitempty"`
	CASHA256 string     `json:"ca_sha256"`
	Handle   string     `json:"handle"`
	KDF      kdf.Params `json:"kdf"`
	Salts    kdf.Salts  `json:"salts"`
	// Check is HMAC-SHA256(K_keystore, "phonex/v1/check"): it tells a wrong
	// password from a damaged keystore. It can be tested only with the OPRF
	// output, which needs the server.
	Check []byte `json:"check"`
}

// ParseMeta decodes and checks profile.json.
func ParseMeta(data []byte) (*Meta, error) {
	var m Meta
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTampered, MetaFile, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%w: %s version %d (this phonex reads version 1)", ErrTampered, MetaFile, m.Version)
	}
	if err := m.KDF.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTampered, MetaFile, err)
	}
	for _, s := range [][]byte{m.Salts.Scrypt, m.Salts.Keystore, m.Salts.Database} {
		if len(s) != kdf.SaltSize {
			return nil, fmt.Errorf("%w: %s: bad salt", ErrTampered, MetaFile)
		}
	}
	if m.Server == "" || m.Handle == "" || len(m.Check) != 32 || len(m.CASHA256) != 64 {
		return nil, fmt.Errorf("%w: %s: missing fields", ErrTampered, MetaFile)
	}
	return &m, nil
}

func readMeta(path string) (*Meta, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMeta(data)
}

// writeFile writes atomically: a temporary file, fsync, rename.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func (m *Meta) encode() []byte {
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}
