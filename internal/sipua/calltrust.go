package sipua

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/phonex/phonex/internal/zrtp"
)

// callTrust is what a call learnt about the peer's identity from the
// signalling: the signed zrtp-hash and the messaging-identity binding.
type callTrust struct {
	mu               sync.Mutex
	from, to, callID string
	state            SignedHashState
	detail           string
	signer           string // the device the peer's signature names
	peer             PeerIdentity
	auxSet           bool // our engine carries the messaging auxsecret
}

// AuxState says whether the messaging identities were bound into a call.
const (
	AuxMatched  = "matched"  // both ends bound the same two identity keys
	AuxMismatch = "mismatch" // we bound them, the peer's differ or are absent
	AuxNone     = "none"     // no binding: the peer's device is not verified
)

// Hello hash states (RFC 6189 §8.1).
const (
	HelloHashMatched      = "matched"       // the Hello matched the peer's a=zrtp-hash
	HelloHashMismatch     = "mismatch"      // a Hello with another hash arrived (dropped): attack indicator
	HelloHashNotSignalled = "not_signalled" // the peer's SDP had no zrtp-hash
)

// aor is a From or To address as user@host: what proxies leave alone.
func aor(u sip.Uri) string { return u.User + "@" + strings.ToLower(u.Host) }

// accountOf returns the user@domain that a SIP address names, or "" when
// its host is an IP address (a direct call names no account).
func accountOf(a string) string {
	_, host, ok := strings.Cut(a, "@")
	if !ok || host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return ""
	}
	return a
}

func newCallID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// signOffer fills in the Call-ID and To of an INVITE when missing (sipgo
// would add them later), tells the user about changed keys of the callee
// before anything rings, and signs our zrtp-hash for this call. It returns
// the offer to send.
func (c *Call) signOffer(req *sip.Request) ([]byte, error) {
	if req.CallID() == nil {
		id := sip.CallIDHeader(newCallID())
		req.AppendHeader(&id)
	}
	if req.To() == nil {
		to := sip.ToHeader{Address: sip.Uri{Scheme: req.Recipient.Scheme, User: req.Recipient.User, Host: req.Recipient.Host}}
		req.AppendHeader(&to)
	}
	t := &c.trust
	t.mu.Lock()
	t.from, t.to, t.callID = aor(req.From().Address), aor(req.To().Address), req.CallID().Value()
	t.state = SignedHashOff
	t.mu.Unlock()
	if id := c.opts.Signer; id != nil && c.local.ZRTPHash != "" {
		if acct := accountOf(t.to); acct != "" {
			c.alertChangedKeys(id, acct)
		}
		hs, err := SignHash(id, SignedHash{Role: RoleOffer, From: t.from, To: t.to, CallID: t.callID,
			SessionID: c.local.SessionID, ZRTPHash: c.local.ZRTPHash})
		if err != nil {
			return nil, err
		}
		c.local.HashSig = hs
	}
	return c.local.Marshal()
}

// alertChangedKeys says, before the call rings, which of the account's
// devices have a key that changed since first seen and was not trusted.
func (c *Call) alertChangedKeys(id Signer, acct string) {
	devs, err := id.ChangedKeys(acct)
	if err != nil {
		c.log.Debug("changed keys", "err", err)
		return
	}
	for _, d := range devs {
		c.alertNamed("contact device key changed", "the key of %s changed since first seen and you have not trusted it since: ask the contact whether they re-enrolled it, and compare the SAS aloud", d)
	}
}

// checkOffer is the answerer's side, before ringing: it checks the
// offerer's signed zrtp-hash, binds the messaging identities when the
// offerer's device is verified, and signs our answer.
func (c *Call) checkOffer(req *sip.Request, offer, ans *Media) error {
	t := &c.trust
	t.mu.Lock()
	if f := req.From(); f != nil {
		t.from = aor(f.Address)
	}
	if to := req.To(); to != nil {
		t.to = aor(to.Address)
	}
	if id := req.CallID(); id != nil {
		t.callID = id.Value()
	}
	t.mu.Unlock()
	id := c.opts.Signer
	if id == nil {
		c.setSigned(SignedHashOff, "", PeerIdentity{}, "this device has no profile: signatures are neither made nor checked")
		return nil
	}
	c.checkPeerSig(id, offer, SignedHash{Role: RoleOffer, From: t.from, To: t.to, CallID: t.callID,
		SessionID: offer.SessionID, ZRTPHash: offer.ZRTPHash}, accountOf(t.from), true)
	if ans.ZRTPHash == "" {
		return nil
	}
	// Peer names the offerer's device only when we verified it: that
	// tells the offerer we bind the messaging identities.
	peer := ""
	t.mu.Lock()
	if t.state == SignedHashVerified {
		peer = t.signer
	}
	t.mu.Unlock()
	hs, err := SignHash(id, SignedHash{Role: RoleAnswer, Peer: peer, From: t.from, To: t.to, CallID: t.callID,
		SessionID: ans.SessionID, ZRTPHash: ans.ZRTPHash})
	if err != nil {
		return err
	}
	ans.HashSig = hs
	return nil
}

// checkAnswer is the offerer's side once the answer came: it checks the
// answerer's signed zrtp-hash and binds the messaging identities when the
// answerer verified us too.
func (c *Call) checkAnswer(ans *Media) {
	id := c.opts.Signer
	if id == nil {
		c.setSigned(SignedHashOff, "", PeerIdentity{}, "this device has no profile: signatures are neither made nor checked")
		return
	}
	t := &c.trust
	t.mu.Lock()
	s := SignedHash{Role: RoleAnswer, Peer: id.Device(), From: t.from, To: t.to, CallID: t.callID,
		SessionID: ans.SessionID, ZRTPHash: ans.ZRTPHash}
	t.mu.Unlock()
	bind := true
	if ans.HashSig != nil && ans.HashSigErr == nil {
		if st, _, _ := CheckHashSig(id, ans.HashSig, s); st != SignedHashVerified {
			// An answerer that could not verify our offer names no peer
			// and binds nothing.
			alt := s
			alt.Peer = ""
			if st, _, _ := CheckHashSig(id, ans.HashSig, alt); st == SignedHashVerified {
				s, bind = alt, false
			}
		}
	}
	c.checkPeerSig(id, ans, s, accountOf(s.To), bind)
}

// checkPeerSig checks the peer's signature of s, which must come from a
// device of account when account is not "", and arms the auxsecret when
// bind is set.
func (c *Call) checkPeerSig(id Signer, m *Media, s SignedHash, account string, bind bool) {
	if m.HashSigErr != nil {
		c.setSigned(SignedHashInvalid, "", PeerIdentity{}, m.HashSigErr.Error())
		return
	}
	state, p, err := CheckHashSig(id, m.HashSig, s)
	signer := ""
	if m.HashSig != nil {
		signer = m.HashSig.Device
	}
	detail := ""
	switch state {
	case SignedHashMissing:
		detail = "the peer did not sign its zrtp-hash (a standard phone, or the signature was removed on the way): only the SAS protects this call"
	case SignedHashUnknown:
		detail = fmt.Sprintf("signed by %s, which is not a device of your contacts: the signature cannot be checked", signer)
	case SignedHashInvalid:
		detail = fmt.Sprintf("the signature of %s does not verify for this call: %v", signer, err)
	case SignedHashVerified:
		if acct, _, _ := strings.Cut(signer, "/"); account != "" && !strings.EqualFold(acct, account) {
			state, p = SignedHashInvalid, PeerIdentity{}
			detail = fmt.Sprintf("signed by %s, not by a device of %s", signer, account)
		}
	}
	c.setSigned(state, signer, p, detail)
	switch state {
	case SignedHashInvalid:
		c.alertNamed("signed zrtp-hash invalid", "the peer's signed zrtp-hash is INVALID (%s): possibly a man in the middle on the signalling path; this call is unsafe, compare the SAS aloud", detail)
	case SignedHashVerified:
		if p.KeyChanged {
			c.alertNamed("contact device key changed", "the key of %s changed since first seen and you have not trusted it since: ask the contact whether they re-enrolled it, and compare the SAS aloud", signer)
		}
		if bind && len(p.AuxSecret) > 0 {
			if err := c.engine.SetAuxSecret(p.AuxSecret); err != nil {
				c.log.Warn("ZRTP auxsecret", "err", err)
			} else {
				c.trust.mu.Lock()
				c.trust.auxSet = true
				c.trust.mu.Unlock()
			}
		}
	}
}

func (c *Call) setSigned(state SignedHashState, signer string, p PeerIdentity, detail string) {
	c.trust.mu.Lock()
	defer c.trust.mu.Unlock()
	c.trust.state, c.trust.signer, c.trust.peer, c.trust.detail = state, signer, p, detail
}

// fillTrust adds the identity checks to the secure event: a signature
// that failed, an auxsecret mismatch or a Hello that did not match the
// signalled hash make the call unsafe.
func (c *Call) fillTrust(info *SecureInfo, ev *zrtp.Secure, st *mediaState) {
	t := &c.trust
	t.mu.Lock()
	defer t.mu.Unlock()
	info.SignedHash, info.SignedBy, info.SignedHashDetail = t.state, t.signer, t.detail
	if info.SignedHash == "" {
		info.SignedHash = SignedHashOff
	}
	switch {
	case !t.auxSet:
		info.AuxSecret = AuxNone
	case ev.AuxMismatch:
		info.AuxSecret = AuxMismatch
	default:
		info.AuxSecret = AuxMatched
	}
	switch {
	case st.remoteHash == "":
		info.HelloHash = HelloHashNotSignalled
	case st.hashAlert:
		info.HelloHash = HelloHashMismatch
	default:
		info.HelloHash = HelloHashMatched
	}
	if t.state == SignedHashInvalid || info.AuxSecret == AuxMismatch || info.HelloHash == HelloHashMismatch {
		info.Trust = TrustUnsafe
	}
}

// noteIdentity records in the last call which messaging identity its SAS
// vouches for, and marks it unsafe at once after an auxsecret mismatch.
func (c *Call) noteIdentity(last *LastCall, ev *zrtp.Secure) {
	t := &c.trust
	t.mu.Lock()
	state, signer, keys, auxSet := t.state, t.signer, t.peer.KeySHA256, t.auxSet
	t.mu.Unlock()
	if state == SignedHashInvalid {
		last.Unsafe = true
	}
	if state != SignedHashVerified || !auxSet {
		return
	}
	last.PeerDevice, last.PeerKeys = signer, keys
	last.AuxMatched = !ev.AuxMismatch
	if !ev.AuxMismatch {
		return
	}
	last.Unsafe = true
	if !c.outgoing {
		// The answerer cannot tell a key disagreement from an offerer
		// that could not verify the answer (or never saw its signature)
		// and so bound nothing: it reports, and leaves the mark to the
		// offerer, which binds only once the answer said it did too.
		c.alertNamed("auxsecret mismatch", "the messaging identities bound into this call do not match %s's (ZRTP auxsecret mismatch): either side may hold a wrong key for the other, or the caller could not check your signature; compare the SAS aloud", signer)
		return
	}
	if err := setMessagingTrust(c.opts.Cache, signer, keys, TrustUnsafe); err != nil {
		c.log.Warn("messaging trust", "err", err)
	}
	c.alertNamed("auxsecret mismatch", "the messaging identity keys bound into this call differ between you and %s (ZRTP auxsecret mismatch): one side holds a wrong key for the other; its messaging identity is marked unsafe", signer)
}

// MessagingTrustStore is implemented by secret stores that also keep the
// trust of contacts' messaging identities (the device profile): a SAS
// confirmed in a call that bound both identities verifies the peer
// device's messaging identity, a rejected SAS or a binding mismatch
// marks it unsafe.
type MessagingTrustStore interface {
	// SetMessagingTrust records t for device, whose pinned keys had the
	// fingerprint keySHA when the call bound them.
	SetMessagingTrust(device, keySHA string, t Trust) error
}

// ErrKeysChangedSince: the device's key changed after the call.
var ErrKeysChangedSince = errors.New("the device's key changed after the call")

func setMessagingTrust(s SecretStore, device, keySHA string, t Trust) error {
	ms, ok := s.(MessagingTrustStore)
	if !ok || device == "" {
		return nil
	}
	return ms.SetMessagingTrust(device, keySHA, t)
}

// alertNamed shows the user an alert that names a contact device; the log
// gets only its kind, not who is calling whom.
func (c *Call) alertNamed(kind, format string, args ...any) {
	c.log.Warn("call alert", "kind", kind)
	c.emit(Event{Type: EventAlert, Reason: fmt.Sprintf(format, args...)})
}
