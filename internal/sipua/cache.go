package sipua

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/zrtp"
)

// Trust is what the user may believe about the peer of a call.
type Trust string

// Trust states.
const (
	// TrustUnverified: keys agreed, but nobody has compared the SAS with
	// this peer yet.
	TrustUnverified Trust = "unverified"
	// TrustVerified: the retained secret matched and the user confirmed
	// the SAS with this peer in an earlier call (RFC 6189 §7.1).
	TrustVerified Trust = "verified"
	// TrustUnsafe: the peer's retained secret did not match ours, or the
	// user found the SAS different: possibly a man in the middle
	// (RFC 6189 §4.3.2, §7.1).
	TrustUnsafe Trust = "unsafe"
)

// SecretCache keeps our ZID and the ZRTP retained secrets of each peer ZID
// in files under one directory, one file per peer, readable by the owner
// only. It implements zrtp.Cache.
type SecretCache struct {
	dir string
	mu  sync.Mutex
}

// peerRecord is the file kept for one peer.
type peerRecord struct {
	RS1      []byte    `json:"rs1"`
	RS2      []byte    `json:"rs2,omitempty"`
	Verified bool      `json:"verified"`
	Unsafe   bool      `json:"unsafe,omitempty"`
	Expires  time.Time `json:"expires,omitzero"` // zero: never
	Updated  time.Time `json:"updated"`
}

// OpenSecretCache opens (creating it if needed) the cache in dir.
func OpenSecretCache(dir string) (*SecretCache, error) {
	if err := os.MkdirAll(filepath.Join(dir, "peers"), 0o700); err != nil {
		return nil, fmt.Errorf("open ZRTP cache: %w", err)
	}
	return &SecretCache{dir: dir}, nil
}

// Dir is the cache directory.
func (c *SecretCache) Dir() string { return c.dir }

// ZID returns this endpoint's ZID, creating a random one on first use
// (RFC 6189 §4.9: one ZID per installation, kept across calls).
func (c *SecretCache) ZID() (zrtp.ZID, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var z zrtp.ZID
	p := filepath.Join(c.dir, "zid")
	b, err := os.ReadFile(p)
	if err == nil {
		d, derr := hex.DecodeString(strings.TrimSpace(string(b)))
		if derr != nil || len(d) != len(z) {
			return z, fmt.Errorf("ZRTP cache: %s is damaged; remove it to get a new ZID (peers will then see a new identity)", p)
		}
		copy(z[:], d)
		return z, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return z, fmt.Errorf("ZRTP cache: read ZID: %w", err)
	}
	if _, err := rand.Read(z[:]); err != nil {
		return z, fmt.Errorf("ZRTP cache: new ZID: %w", err)
	}
	if err := writeFileAtomic(p, []byte(hex.EncodeToString(z[:])+"\n")); err != nil {
		return z, fmt.Errorf("ZRTP cache: write ZID: %w", err)
	}
	return z, nil
}

func (c *SecretCache) path(peer zrtp.ZID) string {
	return filepath.Join(c.dir, "peers", hex.EncodeToString(peer[:])+".json")
}

func (c *SecretCache) load(peer zrtp.ZID) (peerRecord, bool) {
	var r peerRecord
	b, err := os.ReadFile(c.path(peer))
	if err != nil || json.Unmarshal(b, &r) != nil || len(r.RS1) != 32 {
		return peerRecord{}, false
	}
	return r, true
}

func (c *SecretCache) save(peer zrtp.ZID, r peerRecord) error {
	r.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.path(peer), b); err != nil {
		return fmt.Errorf("ZRTP cache: save peer %s: %w", peer, err)
	}
	return nil
}

// Lookup implements zrtp.Cache. Expired records count as absent.
func (c *SecretCache) Lookup(peer zrtp.ZID) (zrtp.CachedSecret, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.load(peer)
	if !ok || (!r.Expires.IsZero() && time.Now().After(r.Expires)) {
		return zrtp.CachedSecret{}, false
	}
	return zrtp.CachedSecret{RS1: r.RS1, RS2: r.RS2, Verified: r.Verified && !r.Unsafe}, true
}

// Store saves the new retained secrets for peer. expiry is the peer's
// cache expiry interval in seconds (RFC 6189 §4.9): 0 means the peer asks
// us not to keep them, 0xffffffff means no limit.
func (c *SecretCache) Store(peer zrtp.ZID, rec zrtp.CachedSecret, expiry uint32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if expiry == 0 {
		if err := os.Remove(c.path(peer)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ZRTP cache: forget peer %s: %w", peer, err)
		}
		return nil
	}
	r := peerRecord{RS1: rec.RS1, RS2: rec.RS2, Verified: rec.Verified}
	if expiry != zrtp.CacheExpiryForever {
		r.Expires = time.Now().Add(time.Duration(expiry) * time.Second).UTC()
	}
	return c.save(peer, r)
}

// SetVerified records that the user compared the SAS with peer and found
// it equal (true) or different (false, which marks the peer unsafe).
func (c *SecretCache) SetVerified(peer zrtp.ZID, ok bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, found := c.load(peer)
	if !found {
		return nil // nothing retained yet; the next Store carries the flag
	}
	r.Verified, r.Unsafe = ok, !ok
	return c.save(peer, r)
}

// MarkUnsafe records a retained-secret mismatch for peer until the user
// verifies the SAS again.
func (c *SecretCache) MarkUnsafe(peer zrtp.ZID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, found := c.load(peer)
	if !found {
		return nil
	}
	r.Unsafe, r.Verified = true, false
	return c.save(peer, r)
}

func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
