package sipua

import (
	"crypto/rand"
	"crypto/subtle"
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

// SecretStore keeps this endpoint's ZID and one PeerRecord per peer ZID.
// Implementations only persist; what the records mean is decided in this
// package. The device profile keeps them in its encrypted database; a
// FileStore keeps them in plain files for direct calls without a profile.
type SecretStore interface {
	// ZID returns this endpoint's ZID, creating a random one on first use
	// (RFC 6189 §4.9: one ZID per installation, kept across calls).
	ZID() (zrtp.ZID, error)
	// Peer returns the record of peer; found is false when there is none.
	Peer(peer zrtp.ZID) (r PeerRecord, found bool, err error)
	// PutPeer writes the record of peer.
	PutPeer(peer zrtp.ZID, r PeerRecord) error
	// Peers lists every record, for finding a peer by its SIP address.
	Peers() (map[zrtp.ZID]PeerRecord, error)
}

// PeerRecord is what is kept about one peer ZID: the retained secrets
// (RFC 6189 §4.9), the trust flags, and the SAS shown in the last call so
// that the user can confirm it after the call.
type PeerRecord struct {
	RS1      []byte    `json:"rs1,omitempty"`
	RS2      []byte    `json:"rs2,omitempty"`
	Verified bool      `json:"verified"`
	Unsafe   bool      `json:"unsafe,omitempty"`
	Expires  time.Time `json:"expires,omitzero"` // zero: never
	Updated  time.Time `json:"updated"`

	Last LastCall `json:"last_call,omitzero"`
}

// LastCall is what the user saw in the latest call with a peer.
type LastCall struct {
	Peer    string    `json:"peer,omitempty"` // SIP address as shown
	SAS     string    `json:"sas,omitempty"`
	SASType string    `json:"sas_type,omitempty"`
	At      time.Time `json:"at,omitzero"`
	// Unsafe: the call was shown as unsafe: its retained secret did not
	// match (Mismatch, §4.3.2), or the peer was marked unsafe before.
	Unsafe   bool `json:"unsafe,omitempty"`
	Mismatch bool `json:"mismatch,omitempty"`
	// Confirmed: the user confirmed this SAS already.
	Confirmed bool `json:"confirmed,omitempty"`
	// Pending is the secret of an unsafe call, kept back until the user
	// confirms its SAS (§4.6.1.1).
	Pending *PendingSecret `json:"pending,omitempty"`
	// PeerDevice is the contact device whose signed zrtp-hash verified
	// and whose messaging identity the call bound (auxsecret.go), with
	// the fingerprint of its pinned keys; AuxMatched: the binding
	// matched, so confirming this SAS verifies that identity too.
	PeerDevice string `json:"peer_device,omitempty"`
	PeerKeys   string `json:"peer_keys,omitempty"`
	AuxMatched bool   `json:"aux_matched,omitempty"`
}

// PendingSecret is a retained secret waiting for the user's confirmation.
type PendingSecret struct {
	RS1     []byte    `json:"rs1"`
	RS2     []byte    `json:"rs2,omitempty"`
	Expires time.Time `json:"expires,omitzero"`
}

// Errors of SAS confirmation that callers branch on.
var (
	// ErrNoCallRemembered: there was no call with that peer to confirm.
	ErrNoCallRemembered = errors.New("no call remembered")
	// ErrSASMismatch: the words given are not the SAS of the last call.
	ErrSASMismatch = errors.New("the SAS given is not the one shown in the last call with this peer")
)

// expiryTime turns a cache expiry interval (seconds, RFC 6189 §4.9) into a
// time; zero means never.
func expiryTime(now time.Time, expiry uint32) time.Time {
	if expiry == zrtp.CacheExpiryForever {
		return time.Time{}
	}
	return now.Add(time.Duration(expiry) * time.Second).UTC()
}

// zrtpCache adapts a SecretStore to the engine's zrtp.Cache.
type zrtpCache struct{ s SecretStore }

// Lookup implements zrtp.Cache. Expired and damaged records count as
// absent; a peer marked unsafe is never reported verified.
func (c zrtpCache) Lookup(peer zrtp.ZID) (zrtp.CachedSecret, bool) {
	r, ok, err := c.s.Peer(peer)
	if err != nil || !ok || len(r.RS1) != 32 || (!r.Expires.IsZero() && time.Now().After(r.Expires)) {
		return zrtp.CachedSecret{}, false
	}
	return zrtp.CachedSecret{RS1: r.RS1, RS2: r.RS2, Verified: r.Verified && !r.Unsafe}, true
}

// FindPeer finds a peer by its ZID in hex or by the SIP address of the
// last call with it (with or without "sip:"); of several ZIDs seen at one
// address the latest call wins.
func FindPeer(s SecretStore, who string) (zrtp.ZID, PeerRecord, error) {
	var z zrtp.ZID
	if b, err := hex.DecodeString(who); err == nil && len(b) == len(z) {
		copy(z[:], b)
		r, ok, err := s.Peer(z)
		if err != nil {
			return z, r, err
		}
		if !ok || r.Last.SAS == "" {
			return z, r, fmt.Errorf("%w with ZID %s", ErrNoCallRemembered, who)
		}
		return z, r, nil
	}
	all, err := s.Peers()
	if err != nil {
		return z, PeerRecord{}, err
	}
	want := strings.TrimPrefix(who, "sip:")
	var best PeerRecord
	found := false
	for id, r := range all {
		if r.Last.SAS == "" || strings.TrimPrefix(r.Last.Peer, "sip:") != want {
			continue
		}
		if !found || r.Last.At.After(best.Last.At) {
			z, best, found = id, r, true
		}
	}
	if !found {
		return z, best, fmt.Errorf("%w with %s (name the peer by the ZID printed with the SAS)", ErrNoCallRemembered, who)
	}
	return z, best, nil
}

// Confirmation is the outcome of confirming a call's SAS.
type Confirmation struct {
	PeerZID zrtp.ZID
	Peer    string
	SAS     string
	At      time.Time
	// Unsafe: the confirmed call had a retained-secret mismatch; its new
	// secret is kept now.
	Unsafe bool
	// MessagingVerified names the contact device whose messaging
	// identity the confirmation verified too; "" when the call bound none.
	MessagingVerified string
}

// ConfirmLastCall records that the user compared the SAS of the last call
// with the peer named by who (a ZID in hex or a SIP address) and that it
// read sas. Words that differ from the SAS shown in that call are refused
// and change nothing.
func ConfirmLastCall(s SecretStore, who, sas string) (Confirmation, error) {
	z, r, err := FindPeer(s, who)
	if err != nil {
		return Confirmation{}, err
	}
	if !SameSAS(r.Last.SAS, sas) {
		return Confirmation{}, fmt.Errorf("%w (%s, call at %s): nothing changed", ErrSASMismatch, r.Last.Peer, r.Last.At.Local().Format(time.DateTime))
	}
	dev, err := confirm(s, z, r.Last.SAS, false)
	if err != nil {
		return Confirmation{}, err
	}
	return Confirmation{PeerZID: z, Peer: r.Last.Peer, SAS: r.Last.SAS, At: r.Last.At, Unsafe: r.Last.Unsafe, MessagingVerified: dev}, nil
}

// SameSAS compares two renderings of a SAS, ignoring case and whether the
// words are separated by spaces or colons (bzrtp's way), in constant time.
func SameSAS(a, b string) bool {
	norm := func(s string) string {
		return strings.Join(strings.Fields(strings.ToLower(strings.ReplaceAll(s, ":", " "))), " ")
	}
	x, y := norm(a), norm(b)
	if x == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(x), []byte(y)) == 1
}

// confirm marks the last call's SAS with peer as confirmed: the pending
// secret of an unsafe call becomes the retained one, and the peer is
// verified (RFC 6189 §4.6.1.1, §7.1). When the call bound both messaging
// identities and the binding matched, the peer device's messaging
// identity is verified too; its name is returned.
func confirm(s SecretStore, peer zrtp.ZID, sas string, inCall bool) (string, error) {
	r, ok, err := s.Peer(peer)
	if err != nil {
		return "", err
	}
	if !ok || !SameSAS(r.Last.SAS, sas) {
		return "", fmt.Errorf("confirm SAS: %w", ErrNoCallRemembered)
	}
	dev := ""
	if r.Last.PeerDevice != "" && r.Last.AuxMatched {
		if _, ok := s.(MessagingTrustStore); ok {
			if err := setMessagingTrust(s, r.Last.PeerDevice, r.Last.PeerKeys, TrustVerified); err != nil {
				return "", fmt.Errorf("confirm SAS: messaging identity of %s: %w", r.Last.PeerDevice, err)
			}
			dev = r.Last.PeerDevice
		}
	}
	if r.Last.Mismatch && r.Last.Pending == nil && !r.Last.Confirmed {
		if inCall {
			// The new secret is not agreed yet: the call keeps it,
			// verified, when it comes.
			r.Last.Confirmed = true
			return dev, s.PutPeer(peer, r)
		}
		return "", errors.New("confirm SAS: the unsafe call ended before a new secret was agreed; call again and confirm the SAS during the call")
	}
	if p := r.Last.Pending; p != nil {
		r.RS1, r.RS2, r.Expires = p.RS1, p.RS2, p.Expires
		r.Last.Pending = nil
	}
	r.Verified, r.Unsafe, r.Last.Confirmed = true, false, true
	r.Updated = time.Now().UTC()
	return dev, s.PutPeer(peer, r)
}

func confirmInCall(s SecretStore, peer zrtp.ZID, sas string) (string, error) {
	return confirm(s, peer, sas, true)
}

// reject records that the user found the SAS different: the peer is unsafe
// until a SAS is confirmed, and no retained secret is kept (the one of this
// call may already be stored, and it may be a man in the middle's).
func reject(s SecretStore, peer zrtp.ZID) error {
	r, _, err := s.Peer(peer)
	if err != nil {
		return err
	}
	if err := setMessagingTrust(s, r.Last.PeerDevice, r.Last.PeerKeys, TrustUnsafe); err != nil {
		return fmt.Errorf("reject SAS: messaging identity of %s: %w", r.Last.PeerDevice, err)
	}
	r.Verified, r.Unsafe = false, true
	r.RS1, r.RS2, r.Expires = nil, nil, time.Time{}
	r.Last.Pending, r.Last.Confirmed = nil, false
	r.Updated = time.Now().UTC()
	return s.PutPeer(peer, r)
}

// FileStore keeps the ZID and the peer records in files under one
// directory, one file per peer, readable by the owner only. The files are
// not encrypted: it is meant for direct calls without a profile.
type FileStore struct {
	dir string
	mu  sync.Mutex
}

// OpenFileStore opens (creating it if needed) the store in dir.
func OpenFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, "peers"), 0o700); err != nil {
		return nil, fmt.Errorf("open ZRTP cache: %w", err)
	}
	return &FileStore{dir: dir}, nil
}

// Dir is the cache directory.
func (c *FileStore) Dir() string { return c.dir }

// ZID implements SecretStore.
func (c *FileStore) ZID() (zrtp.ZID, error) {
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

func (c *FileStore) path(peer zrtp.ZID) string {
	return filepath.Join(c.dir, "peers", hex.EncodeToString(peer[:])+".json")
}

// Peer implements SecretStore. A damaged file counts as absent.
func (c *FileStore) Peer(peer zrtp.ZID) (PeerRecord, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var r PeerRecord
	b, err := os.ReadFile(c.path(peer))
	if errors.Is(err, os.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("ZRTP cache: read peer %s: %w", peer, err)
	}
	if json.Unmarshal(b, &r) != nil {
		return PeerRecord{}, false, nil
	}
	return r, true, nil
}

// PutPeer implements SecretStore.
func (c *FileStore) PutPeer(peer zrtp.ZID, r PeerRecord) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(c.path(peer), b); err != nil {
		return fmt.Errorf("ZRTP cache: save peer %s: %w", peer, err)
	}
	return nil
}

// Peers implements SecretStore.
func (c *FileStore) Peers() (map[zrtp.ZID]PeerRecord, error) {
	ents, err := os.ReadDir(filepath.Join(c.dir, "peers"))
	if err != nil {
		return nil, fmt.Errorf("ZRTP cache: %w", err)
	}
	out := map[zrtp.ZID]PeerRecord{}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		b, err := hex.DecodeString(name)
		var z zrtp.ZID
		if !ok || err != nil || len(b) != len(z) {
			continue
		}
		copy(z[:], b)
		if r, found, err := c.Peer(z); err == nil && found {
			out[z] = r
		}
	}
	return out, nil
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
