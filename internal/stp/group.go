package stp

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/phonex/phonex/internal/wire"
)

// MaxKeySlots bounds the recipients of one STPSimpleGroup message.
const MaxKeySlots = 1024

// groupDefaults are the algorithm versions of STPSimpleGroup v1 when a
// version field is omitted. SealGroup always sends them.
var groupDefaults = suite{sig: SigRSA, key: KeyRSAOAEP, sym: SymAESGCM, mac: MACSHA256}

func groupLists(version int32) (sig, mac []protoreflect.FieldNumber) {
	if version >= 2 {
		return groupSigV2, groupMAC
	}
	return groupSig, groupMAC
}

// SealGroup encrypts out once and seals its keys in one key slot per
// recipient device (draft §2.4), as STPSimpleGroup v2: the signature covers
// the key slots too, so the recipient set is the sender's. destination
// names the group (or the account, for a user's own devices). A recipient
// with a KEM key gets an HPKE slot, otherwise an RSA-OAEP slot for its
// certificate's key. The signer may be RSA or Ed25519.
func SealGroup(from *Sender, destination string, to []*Recipient, out *Outgoing) ([]byte, error) {
	return sealGroup(GroupV2, from, destination, to, out)
}

// sealGroup seals as STPSimpleGroup v1 (tests of the older receivers) or v2.
func sealGroup(p Protocol, from *Sender, destination string, to []*Recipient, out *Outgoing) ([]byte, error) {
	if err := checkSender(from); err != nil {
		return nil, fmt.Errorf("seal STPSimpleGroup: %w", err)
	}
	if out == nil || slices.Contains(to, nil) {
		return nil, fmt.Errorf("seal STPSimpleGroup: nil message or recipient")
	}
	if len(to) == 0 || len(to) > MaxKeySlots {
		return nil, fmt.Errorf("seal STPSimpleGroup: %d recipients, want 1 to %d", len(to), MaxKeySlots)
	}
	nonce := randomNonce()
	m := &wire.STPSimpleGroup{
		AmpType:            proto.Int32(out.AmpType),
		AmpVersion:         proto.Int32(out.AmpVersion),
		SequenceNumber:     out.SequenceNumber,
		MessageSentMiliUTC: proto.Uint64(out.sentMillis()),
		RandomNonce:        proto.Uint32(nonce),
		Sender:             proto.String(from.Address),
		Destination:        proto.String(destination),
		EsymBlockVersion:   proto.Int32(groupDefaults.sym),
		HmacVersion:        proto.Int32(groupDefaults.mac),
	}
	if from.CertificateVersion != "" {
		m.CertificateVersion = proto.String(from.CertificateVersion)
	}
	s := groupDefaults
	sv, err := signatureVersionOf(from.Signer)
	if err != nil {
		return nil, fmt.Errorf("seal STPSimpleGroup: %w", err)
	}
	s.sig = sv
	m.SignatureVersion = proto.Int32(sv)
	keys := newKeys()
	v := &virtualFields{encKey: keys[:symKeySize], macKey: keys[symKeySize:], payload: out.Payload, protocol: p}
	if m.Iv, m.EsymBlock, err = sealPayload(s.sym, v.encKey, out.Payload); err != nil {
		return nil, fmt.Errorf("seal STPSimpleGroup: %w", err)
	}
	for _, r := range to {
		kv := KeyRSAOAEP
		if r.KEM != nil {
			kv = KeyHPKE
		}
		sealed, err := wrapKeys(kv, r, keys)
		if err != nil {
			return nil, fmt.Errorf("seal STPSimpleGroup: %w", err)
		}
		m.KeySlots = append(m.KeySlots, &wire.KeySlot{
			Recipient: proto.String(r.Address),
			Version:   proto.Int32(kv),
			SealedKey: sealed,
		})
	}
	if err := signAndMAC(m, s, from, v, groupLists); err != nil {
		return nil, fmt.Errorf("seal STPSimpleGroup: %w", err)
	}
	return marshalSTP(p, m)
}

func openGroup(p Protocol, payload []byte, r *Receiver) (*Message, error) {
	msg, err := openGroupMessage(p, payload, r)
	if err != nil {
		return nil, fmt.Errorf("open STPSimpleGroup v%d: %w", p.Version, err)
	}
	return msg, nil
}

func openGroupMessage(p Protocol, payload []byte, r *Receiver) (*Message, error) {
	if p != GroupV1 && p != GroupV2 {
		return nil, fmt.Errorf("protocol %v: %w", p, ErrUnknownProtocol)
	}
	if len(payload) > MaxMessageSize {
		return nil, fmt.Errorf("%d bytes: %w", len(payload), ErrMalformed)
	}
	var m wire.STPSimpleGroup
	if err := proto.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	if hasForeign(&m, true) {
		return nil, fmt.Errorf("virtual or unknown field on the wire: %w", ErrMalformed)
	}
	if m.RandomNonce == nil || m.Sender == nil || m.Destination == nil || m.MessageSentMiliUTC == nil ||
		m.Signature == nil || m.Iv == nil || len(m.KeySlots) == 0 || m.EsymBlock == nil || m.Hmac == nil {
		return nil, fmt.Errorf("required field missing: %w", ErrMalformed)
	}
	if len(m.KeySlots) > MaxKeySlots {
		return nil, fmt.Errorf("%d key slots: %w", len(m.KeySlots), ErrMalformed)
	}
	s := suite{
		sig: pick(m.SignatureVersion, groupDefaults.sig),
		sym: pick(m.EsymBlockVersion, groupDefaults.sym),
		mac: pick(m.HmacVersion, groupDefaults.mac),
	}
	if s.sym != SymAESGCM || (s.mac != MACSHA256 && s.mac != MACSHA1) {
		return nil, fmt.Errorf("algorithm versions %+v: %w", s, ErrUnsupported)
	}
	// The key slot is the recipient check: one must name this device.
	i := slices.IndexFunc(m.KeySlots, func(k *wire.KeySlot) bool {
		return slices.Contains(r.Addresses, k.GetRecipient())
	})
	if i < 0 {
		return nil, fmt.Errorf("no key slot for this receiver: %w", ErrNotForMe)
	}
	slot := m.KeySlots[i]
	encKey, macKey, err := unwrapKeys(pick(slot.Version, KeyRSAOAEP), r, slot.GetSealedKey())
	if err != nil {
		return nil, fmt.Errorf("key slot %d: %w", i, err)
	}
	v := &virtualFields{encKey: encKey, macKey: macKey, protocol: p}
	covered, err := coveredBytes(&m, groupMAC, v)
	if err != nil {
		return nil, fmt.Errorf("MACed bytes: %w", err)
	}
	if err := checkMAC(s.mac, macKey, covered, m.Hmac); err != nil {
		return nil, err
	}
	if v.payload, err = openPayload(s.sym, encKey, m.Iv, m.EsymBlock); err != nil {
		return nil, err
	}
	cert, err := senderCert(r, m.GetSender(), m.GetCertificateVersion())
	if err != nil {
		return nil, err
	}
	sigList, _ := groupLists(p.Version)
	if covered, err = coveredBytes(&m, sigList, v); err != nil {
		return nil, fmt.Errorf("signed bytes: %w", err)
	}
	if err := verify(s.sig, cert, covered, m.Signature); err != nil {
		return nil, fmt.Errorf("sender %s: %w", m.GetSender(), err)
	}
	// The key slot only says who can decrypt: a recipient who knows the
	// keys can re-wrap them for anyone. The signed destination says whom
	// the sender wrote to, so it must name this receiver, one of its
	// groups, or (a copy of what the account sent) the sender must be a
	// device of this receiver's own account.
	ok, err := matchDestination(r, m.GetDestinationType(), m.GetDestination(), m.GetRandomNonce())
	if err != nil {
		return nil, err
	}
	if !ok && !slices.Contains(r.Groups, m.GetDestination()) && !slices.Contains(r.Addresses, accountOf(m.GetSender())) {
		return nil, fmt.Errorf("signed destination %q: %w", m.GetDestination(), ErrDestination)
	}
	return accept(p, &m, m.SequenceNumber, v.payload, r)
}

// accountOf is the account part of a device address (user@domain/device).
func accountOf(sender string) string {
	if i := strings.LastIndexByte(sender, '/'); i > 0 {
		return sender[:i]
	}
	return ""
}
