package sipua

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// The signed zrtp-hash (seed 000 §4.1): each PhoneX device signs the
// a=zrtp-hash of its SDP with its certified identity key, so a man in the
// middle on the signalling path cannot substitute its own Hello hash (RFC
// 6189 §8.1) without the signature failing against the pinned certificate.
// The attribute is
//
//	a=x-phonex-zrtp-hash-sig:v1 <user@domain/device> <base64 signature>
//
// and the signature covers SignedHash.Bytes, which binds the hash to the
// call (Call-ID, SDP session id), to both parties' addresses and, in the
// answer, to the offerer's device, so it cannot be replayed into another
// call or by another party. Standard SIP endpoints ignore the attribute
// (RFC 4566 §5.13: unknown attributes are ignored).

// HashSigAttr is the SDP attribute name.
const HashSigAttr = "x-phonex-zrtp-hash-sig"

// HashSigVersion is the only version of the signed structure so far.
const HashSigVersion = "v1"

// hashSigLabel separates these signatures from every other use of the
// device key (capability records, key-agreement proofs).
const hashSigLabel = "PhoneX signed zrtp-hash"

// Roles of a signed zrtp-hash.
const (
	RoleOffer  = "offer"
	RoleAnswer = "answer"
)

// SignedHashState is what checking the peer's signature found.
type SignedHashState string

// Outcomes of checking the peer's signed zrtp-hash.
const (
	// SignedHashVerified: the peer's zrtp-hash is signed for this call by
	// the contact device it names, checked against its pinned certificate.
	SignedHashVerified SignedHashState = "verified"
	// SignedHashMissing: the peer sent no signature (a standard phone, or
	// someone on the signalling path removed it).
	SignedHashMissing SignedHashState = "missing"
	// SignedHashInvalid: a signature that does not verify, or was made
	// for another call, hash or party: the call is unsafe.
	SignedHashInvalid SignedHashState = "invalid"
	// SignedHashUnknown: signed by a device that is not among our
	// contacts' pinned devices, so it cannot be checked.
	SignedHashUnknown SignedHashState = "unknown_signer"
	// SignedHashOff: this side has no device identity (a call without a
	// profile), so it neither signs nor checks.
	SignedHashOff SignedHashState = "not_checked"
)

// Errors of the signed zrtp-hash that callers branch on.
var (
	ErrBadHashSig = errors.New("sipua: malformed a=" + HashSigAttr)
	// ErrUnknownSigner: the device is not a pinned contact device.
	ErrUnknownSigner = errors.New("not a device of your contacts")
)

// HashSig is the value of the a=x-phonex-zrtp-hash-sig attribute.
type HashSig struct {
	Device string // the signer, user@domain/device
	Sig    []byte
}

// maxHashSigValue bounds the attribute: an RSA-4096 signature is 512
// bytes (684 in base64) and a device name at most a few hundred.
const maxHashSigValue = 2048

// String renders the attribute value.
func (h HashSig) String() string {
	return HashSigVersion + " " + h.Device + " " + base64.StdEncoding.EncodeToString(h.Sig)
}

// ParseHashSig reads an attribute value: the version, the signer's device
// name and the base64 signature, separated by single spaces.
func ParseHashSig(v string) (*HashSig, error) {
	if len(v) > maxHashSigValue {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadHashSig, len(v))
	}
	parts := strings.Split(strings.TrimSpace(v), " ")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: want \"v1 DEVICE SIGNATURE\"", ErrBadHashSig)
	}
	if parts[0] != HashSigVersion {
		return nil, fmt.Errorf("%w: version %q", ErrBadHashSig, parts[0])
	}
	dev := parts[1]
	acct, name, ok := strings.Cut(dev, "/")
	if !ok || name == "" || strings.Count(acct, "@") != 1 || strings.HasPrefix(acct, "@") || strings.HasSuffix(acct, "@") {
		return nil, fmt.Errorf("%w: signer %q is not user@domain/device", ErrBadHashSig, dev)
	}
	for _, r := range dev {
		if r <= ' ' || r >= 0x7f {
			return nil, fmt.Errorf("%w: signer %q", ErrBadHashSig, dev)
		}
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: signature is not base64", ErrBadHashSig)
	}
	return &HashSig{Device: dev, Sig: sig}, nil
}

// SignedHash is the statement a device signs about its zrtp-hash.
type SignedHash struct {
	Role   string // RoleOffer or RoleAnswer
	Signer string // the signing device, user@domain/device
	// Peer is, in an answer, the offerer's device as its signature named
	// it ("" when the offer was unsigned); "" in an offer, whose signer
	// does not know which device will answer.
	Peer string
	// From and To are the addresses of the From and To headers as
	// user@host, which proxies leave as they are (RFC 3261 §16.6).
	From, To string
	CallID   string
	// SessionID is the o= session id of the signer's SDP (RFC 4566 §5.2).
	SessionID uint64
	ZRTPHash  string // "1.10 <64 hex digits>", as in a=zrtp-hash
}

// Bytes is the encoding that is signed: the label, a zero byte, the
// version, then each field as a 16-bit big-endian length and its bytes,
// the session id as 8 bytes, so that no two statements encode alike.
func (s SignedHash) Bytes() []byte {
	b := append([]byte(hashSigLabel), 0)
	field := func(v string) {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	field(HashSigVersion)
	field(s.Role)
	field(s.Signer)
	field(s.Peer)
	field(s.From)
	field(s.To)
	field(s.CallID)
	b = binary.BigEndian.AppendUint64(b, s.SessionID)
	field(strings.ToLower(s.ZRTPHash))
	return b
}

// Signer signs and checks signed zrtp-hashes with the device's certified
// identity key and its contacts' pinned certificates.
type Signer interface {
	// Device is this device, user@domain/device.
	Device() string
	// Sign signs msg with the device's identity key (Ed25519, or RSA-PSS
	// for the rsa suite).
	Sign(msg []byte) ([]byte, error)
	// VerifyPeer checks sig over msg against the pinned certificate of
	// a contact's device; ErrUnknownSigner when device is none.
	VerifyPeer(device string, msg, sig []byte) (PeerIdentity, error)
	// ChangedKeys lists the devices of account whose key changed since
	// first seen and were not trusted since (nil for a non-contact).
	ChangedKeys(account string) ([]string, error)
}

// PeerIdentity is what the device that signed the peer's zrtp-hash is
// known as.
type PeerIdentity struct {
	// KeyChanged: its key changed since first seen and the user has not
	// trusted it since.
	KeyChanged bool
	// AuxSecret binds both devices' certified messaging identity keys
	// (auxsecret.go); nil when there is none for this pair.
	AuxSecret []byte
	// KeySHA256 names the pinned keys the binding was made with.
	KeySHA256 string
}

// SignHash signs s with id and returns the attribute.
func SignHash(id Signer, s SignedHash) (*HashSig, error) {
	s.Signer = id.Device()
	sig, err := id.Sign(s.Bytes())
	if err != nil {
		return nil, fmt.Errorf("sign zrtp-hash: %w", err)
	}
	return &HashSig{Device: s.Signer, Sig: sig}, nil
}

// CheckHashSig checks the peer's attribute for the statement s (everything
// but Signer filled from what this side saw of the call). It returns the
// state and, when verified, what the signer is known as; the error says
// why a signature is not verified.
func CheckHashSig(id Signer, hs *HashSig, s SignedHash) (SignedHashState, PeerIdentity, error) {
	if hs == nil {
		return SignedHashMissing, PeerIdentity{}, nil
	}
	if s.ZRTPHash == "" {
		return SignedHashInvalid, PeerIdentity{}, errors.New("a signature but no a=zrtp-hash")
	}
	s.Signer = hs.Device
	p, err := id.VerifyPeer(hs.Device, s.Bytes(), hs.Sig)
	switch {
	case errors.Is(err, ErrUnknownSigner):
		return SignedHashUnknown, PeerIdentity{}, err
	case err != nil:
		return SignedHashInvalid, PeerIdentity{}, err
	}
	return SignedHashVerified, p, nil
}
