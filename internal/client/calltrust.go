package client

import (
	"context"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/sipua"
)

// One verification for calls and messages (seed 002, as Linphone's lime):
// a call between two PhoneX devices signs each side's zrtp-hash with the
// device key and binds both devices' certified messaging identity keys
// into the ZRTP auxsecret (internal/sipua), so the SAS the users compare
// commits to them. Confirming that SAS marks the peer device's messaging
// identity verified; a rejected SAS or a binding mismatch marks it unsafe.
// The mark is kept per device with the fingerprint of the keys it was made
// for: a later key change makes the device unverified again.

// Trust levels of a contact device's messaging identity, lowest first.
const (
	TrustUnsafe     = "unsafe"     // a SAS was rejected, or the keys bound into a call differed
	TrustUnverified = "unverified" // never confirmed in a call, or the key changed since
	TrustVerified   = "verified"   // confirmed by a SAS in a call that bound these keys
)

func trustRank(t string) int {
	switch t {
	case TrustUnsafe:
		return 0
	case TrustVerified:
		return 2
	}
	return 1
}

// kvMsgTrust prefixes the kv rows of messaging trust:
// msgtrust/user@domain/device → JSON trustMark.
const kvMsgTrust = "msgtrust/"

type trustMark struct {
	Trust string    `json:"trust"`
	Keys  string    `json:"keys"` // pinned cert_sha:kex_sha when marked
	At    time.Time `json:"at"`
}

// pinnedKeys is a device's pinned fingerprints in the form trust marks
// keep; "" when the device is not pinned.
func (l *localDB) pinnedKeys(ctx context.Context, device string) (string, error) {
	var c, k string
	err := l.db.QueryRowContext(ctx, `SELECT cert_sha, kex_sha FROM pins WHERE device=?`, device).Scan(&c, &k)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return c + ":" + k, nil
}

// SetMessagingTrust implements sipua.MessagingTrustStore for the profile's
// ZRTP store. Verified is kept only for the keys pinned now, which must be
// the ones the call bound.
func (s zrtpStore) SetMessagingTrust(device, keySHA string, t sipua.Trust) error {
	ctx := context.Background()
	d, err := ident.ParseDevice(device)
	if err != nil {
		return err
	}
	cur, err := s.db.pinnedKeys(ctx, d.String())
	if err != nil {
		return err
	}
	if t == sipua.TrustVerified && (cur == "" || cur != keySHA) {
		return fmt.Errorf("%s: %w", device, sipua.ErrKeysChangedSince)
	}
	b, _ := json.Marshal(trustMark{Trust: string(t), Keys: cur, At: time.Now().UTC()})
	return kvPut(ctx, s.db.db, kvMsgTrust+d.String(), string(b))
}

var _ sipua.MessagingTrustStore = zrtpStore{}

// DeviceTrust is the trust of a contact device's messaging identity: unsafe
// stays until a SAS is confirmed again; verified holds while the pinned
// keys are the ones the call bound and no key-change notice is pending.
func (p *Profile) DeviceTrust(ctx context.Context, device string) (string, error) {
	v, ok, err := kvGet(ctx, p.db.db, kvMsgTrust+device)
	if err != nil || !ok {
		return TrustUnverified, err
	}
	var m trustMark
	if json.Unmarshal([]byte(v), &m) != nil {
		return TrustUnverified, nil
	}
	switch m.Trust {
	case TrustUnsafe:
		return TrustUnsafe, nil
	case TrustVerified:
		cur, err := p.db.pinnedKeys(ctx, device)
		if err != nil {
			return TrustUnverified, err
		}
		if cur == m.Keys && !p.hasNotice(ctx, NoticeKeyChanged, device) {
			return TrustVerified, nil
		}
	}
	return TrustUnverified, nil
}

// leastTrust is the trust of a set of devices: the least trusted one's;
// unverified for none.
func leastTrust(ts []string) string {
	if len(ts) == 0 {
		return TrustUnverified
	}
	least := TrustVerified
	for _, t := range ts {
		if trustRank(t) < trustRank(least) {
			least = t
		}
	}
	return least
}

// ConversationTrust is how far a conversation with account is trusted: as
// far as its least trusted device, of those the contact list last showed.
func (p *Profile) ConversationTrust(ctx context.Context, account string) (string, error) {
	e, ok, err := p.db.cachedContact(ctx, account)
	if err != nil || !ok {
		return TrustUnverified, err
	}
	var ts []string
	for _, d := range e.Devices {
		t, err := p.DeviceTrust(ctx, account+"/"+d.Name)
		if err != nil {
			return TrustUnverified, err
		}
		ts = append(ts, t)
	}
	return leastTrust(ts), nil
}

// cachedContact is the contact list entry of account as last fetched.
func (l *localDB) cachedContact(ctx context.Context, account string) (api.Contact, bool, error) {
	var e api.Contact
	var b []byte
	err := l.db.QueryRowContext(ctx, `SELECT entry FROM contacts WHERE user=?`, account).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, false, fmt.Errorf("contact %s: %w", account, err)
	}
	return e, true, nil
}

// callSigner signs this device's zrtp-hash and checks the peer's against
// the pinned certificates of the contacts (sipua.Signer).
type callSigner struct {
	p         *Profile
	mu        sync.Mutex
	refreshed bool // the contact list was fetched once for an unknown signer
}

// CallSigner is the profile's signer of zrtp-hashes for calls.
func (p *Profile) CallSigner() sipua.Signer { return &callSigner{p: p} }

func (s *callSigner) Device() string { return s.p.Device.String() }

func (s *callSigner) Sign(msg []byte) ([]byte, error) { return keys.Sign(s.p.Keys.Sign, msg) }

// contactDevice finds a device in the cached contact list.
func (s *callSigner) contactDevice(ctx context.Context, dev ident.Device) (api.ContactDevice, bool, error) {
	e, ok, err := s.p.db.cachedContact(ctx, dev.Account.String())
	if err != nil || !ok {
		return api.ContactDevice{}, false, err
	}
	for _, d := range e.Devices {
		if d.Name == dev.Name {
			return d, true, nil
		}
	}
	return api.ContactDevice{}, false, nil
}

// refresh fetches the contact list from the cluster, once per signer: a
// device added, or a certificate renewed, since the list was last
// fetched.
func (s *callSigner) refresh(ctx context.Context) bool {
	s.mu.Lock()
	done := s.refreshed
	s.refreshed = true
	s.mu.Unlock()
	if done {
		return false
	}
	_, err := s.p.Contacts(ctx)
	return err == nil
}

func (s *callSigner) VerifyPeer(device string, msg, sig []byte) (sipua.PeerIdentity, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dev, err := ident.ParseDevice(device)
	if err != nil {
		return sipua.PeerIdentity{}, fmt.Errorf("%w: %v", sipua.ErrUnknownSigner, err)
	}
	out, err := s.verifyPeer(ctx, dev, msg, sig)
	if err != nil && s.refresh(ctx) {
		out, err = s.verifyPeer(ctx, dev, msg, sig)
	}
	return out, err
}

func (s *callSigner) verifyPeer(ctx context.Context, dev ident.Device, msg, sig []byte) (sipua.PeerIdentity, error) {
	var out sipua.PeerIdentity
	d, ok, err := s.contactDevice(ctx, dev)
	if err != nil {
		return out, err
	}
	if !ok {
		return out, sipua.ErrUnknownSigner
	}
	// The certificate as the contact list verified and pinned it.
	vd, err := verifyContactDevice(s.p.caFor(dev.Account, s.contactCA(ctx, dev.Account)), dev.Account.String(), d, s.p.now())
	if err != nil {
		return out, err
	}
	pinned, err := s.p.db.pinnedKeys(ctx, dev.String())
	if err != nil {
		return out, err
	}
	kex := ""
	if d.KexCert != nil {
		kex = vd.kexSHA
	}
	if pinned != vd.KeySHA256+":"+kex {
		return out, fmt.Errorf("the certificate of %s is not the pinned one", dev)
	}
	cert, err := x509.ParseCertificate(d.Cert)
	if err != nil {
		return out, err
	}
	if err := keys.Verify(cert.PublicKey, msg, sig); err != nil {
		return out, fmt.Errorf("signature of %s: %w", dev, err)
	}
	out.KeySHA256 = pinned
	out.KeyChanged = s.p.hasNotice(ctx, NoticeKeyChanged, dev.String())
	// An rsa-suite device has no key-agreement certificate: its RSA key
	// is its whole messaging identity.
	var peerKex, ownKex []byte
	if d.KexCert != nil {
		kc, err := x509.ParseCertificate(d.KexCert)
		if err != nil {
			return out, err
		}
		peerKex = kc.RawSubjectPublicKeyInfo
	}
	if s.p.KexCert != nil {
		ownKex = s.p.KexCert.RawSubjectPublicKeyInfo
	}
	out.AuxSecret = sipua.MessagingAuxSecret(sipua.MessagingIdentity(s.p.Cert.RawSubjectPublicKeyInfo, ownKex),
		sipua.MessagingIdentity(cert.RawSubjectPublicKeyInfo, peerKex))
	return out, nil
}

// ChangedKeys lists the devices of account with a pending key-change
// notice.
func (s *callSigner) ChangedKeys(account string) ([]string, error) {
	ctx := context.Background()
	rows, err := s.p.db.db.QueryContext(ctx, `SELECT k FROM kv WHERE k LIKE ? ORDER BY k`, kvNotice+NoticeKeyChanged+"/%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		dev := strings.TrimPrefix(k, kvNotice+NoticeKeyChanged+"/")
		if d, err := ident.ParseDevice(dev); err == nil && strings.EqualFold(d.Account.String(), account) {
			out = append(out, d.String())
		}
	}
	return out, rows.Err()
}

func deviceSetTrust(ds []ContactDevice) string {
	ts := make([]string, len(ds))
	for i, d := range ds {
		ts[i] = d.Trust
	}
	return leastTrust(ts)
}

// messageTrust adds the trust to a message event: the sending device's
// (not for this account's own devices) and the conversation's.
func (p *Profile) messageTrust(ctx context.Context, ev *Event, sender ident.Device) {
	if sender.Account != p.Device.Account {
		if t, err := p.DeviceTrust(ctx, sender.String()); err == nil {
			ev.Trust = t
		}
	}
	if t, err := p.ConversationTrust(ctx, ev.Peer); err == nil {
		ev.ConversationTrust = t
	}
}
