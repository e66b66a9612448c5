package stp

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/phonex/phonex/internal/wire"
)

// simpleSuite is the algorithm set of each STPSimple version. v1 and v2 use
// the draft's defaults and send no version fields; v3 sends them.
func simpleSuite(version int32) (suite, bool) {
	switch version {
	case 1, 2:
		return suite{sig: SigRSA, key: KeyRSAOAEP, sym: SymAESGCM, mac: MACSHA1}, true
	case 3:
		return suite{sig: SigEd25519, key: KeyHPKE, sym: SymAESGCM, mac: MACSHA256}, true
	}
	return suite{}, false
}

func simpleLists(version int32) (sig, mac []protoreflect.FieldNumber) {
	if version == 1 {
		return simpleSigV1, simpleMACV1
	}
	return simpleSigV2, simpleMACV2
}

// SealSimple encrypts, signs and MACs out for one recipient device with
// STPSimple of the given version (1, 2 or 3) and returns the envelope.
// Versions 1 and 2 need an RSA signer and the recipient's RSA certificate;
// version 3 needs an Ed25519 signer and the recipient's MLKEM768X25519 key.
func SealSimple(version int32, from *Sender, to *Recipient, out *Outgoing) ([]byte, error) {
	p := Protocol{TypeSimple, version}
	s, ok := simpleSuite(version)
	if !ok {
		return nil, fmt.Errorf("seal STPSimple: version %d: %w", version, ErrUnknownProtocol)
	}
	if err := checkSender(from); err != nil {
		return nil, fmt.Errorf("seal STPSimple: %w", err)
	}
	if to == nil || out == nil {
		return nil, fmt.Errorf("seal STPSimple: no recipient or no message")
	}
	m := simpleHeader(from, to.Address, out)
	if version == 3 {
		m.SignatureVersion = proto.Int32(s.sig)
		m.EasymBlockVersion = proto.Int32(s.key)
		m.EsymBlockVersion = proto.Int32(s.sym)
		m.HmacVersion = proto.Int32(s.mac)
	}
	keys := newKeys()
	v := &virtualFields{encKey: keys[:symKeySize], macKey: keys[symKeySize:], payload: out.Payload, protocol: p}
	var err error
	if m.Iv, m.EsymBlock, err = sealPayload(s.sym, v.encKey, out.Payload); err != nil {
		return nil, fmt.Errorf("seal STPSimple: %w", err)
	}
	if m.EasymBlock, err = wrapKeys(s.key, to, keys); err != nil {
		return nil, fmt.Errorf("seal STPSimple: %w", err)
	}
	if err := signAndMAC(m, s, from, v, simpleLists); err != nil {
		return nil, fmt.Errorf("seal STPSimple v%d: %w", version, err)
	}
	return marshalSTP(p, m)
}

// simpleHeader fills the STPSimple fields that STPSimple and STPSimpleAuth
// share, with a fresh random nonce.
func simpleHeader(from *Sender, address string, out *Outgoing) *wire.STPSimple {
	nonce := randomNonce()
	dest, destType := out.destinationFor(nonce, address)
	m := &wire.STPSimple{
		AmpType:            proto.Int32(out.AmpType),
		AmpVersion:         proto.Int32(out.AmpVersion),
		SequenceNumber:     out.SequenceNumber,
		MessageSentMiliUTC: proto.Uint64(out.sentMillis()),
		RandomNonce:        proto.Uint32(nonce),
		Sender:             proto.String(from.Address),
		Destination:        proto.String(dest),
		DestinationType:    destType,
	}
	if from.CertificateVersion != "" {
		m.CertificateVersion = proto.String(from.CertificateVersion)
	}
	return m
}

// signAndMAC sets signature and hmac on m (STPSimple or STPSimpleGroup).
func signAndMAC(m proto.Message, s suite, from *Sender, v *virtualFields, lists func(int32) (sig, mac []protoreflect.FieldNumber)) error {
	sigList, macList := lists(v.protocol.Version)
	covered, err := coveredBytes(m, sigList, v)
	if err != nil {
		return fmt.Errorf("signed bytes: %w", err)
	}
	sv, sig, err := sign(from.Signer, covered)
	if err != nil {
		return err
	}
	if sv != s.sig {
		return fmt.Errorf("signer key gives signature version %d, protocol needs %d: %w", sv, s.sig, ErrUnsupported)
	}
	setBytes(m, fSignature, sig)
	covered, err = coveredBytes(m, macList, v)
	if err != nil {
		return fmt.Errorf("MACed bytes: %w", err)
	}
	mac, err := computeMAC(s.mac, v.macKey, covered)
	if err != nil {
		return err
	}
	setBytes(m, fHMAC, mac)
	return nil
}

func setBytes(m proto.Message, n protoreflect.FieldNumber, b []byte) {
	r := m.ProtoReflect()
	r.Set(r.Descriptor().Fields().ByNumber(n), protoreflect.ValueOfBytes(b))
}

func marshalSTP(p Protocol, m proto.Message) ([]byte, error) {
	b, err := deterministic.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal STP %v: %w", p, err)
	}
	return MarshalEnvelope(p, b)
}

// hasForeign reports whether a [VIRTUAL] field arrived on the wire (the
// draft says they "must not be filled in during message transfer") or an
// unknown one: neither signature nor HMAC would cover it, and a new field
// comes with a new protocol version.
func hasForeign(m proto.Message, payloadVirtual bool) bool {
	r := m.ProtoReflect()
	if len(r.GetUnknown()) > 0 {
		return true
	}
	fds := r.Descriptor().Fields()
	for _, n := range []protoreflect.FieldNumber{fEncKey, fMacKey, fPayload, fProtocolType, fProtocolVersion} {
		if n == fPayload && !payloadVirtual {
			continue
		}
		if r.Has(fds.ByNumber(n)) {
			return true
		}
	}
	return false
}

// checkSuite compares the message's version fields (or their defaults)
// with the suite the protocol version requires.
func checkSuite(want suite, sig, key, sym, mac *int32) error {
	got := suite{pick(sig, SigRSA), pick(key, KeyRSAOAEP), pick(sym, SymAESGCM), pick(mac, MACSHA1)}
	if got != want {
		return fmt.Errorf("algorithm versions %+v, protocol needs %+v: %w", got, want, ErrUnsupported)
	}
	return nil
}

func openSimple(p Protocol, payload []byte, r *Receiver) (*Message, error) {
	msg, err := openSimpleMessage(p, payload, r)
	if err != nil {
		return nil, fmt.Errorf("open STPSimple v%d: %w", p.Version, err)
	}
	return msg, nil
}

func openSimpleMessage(p Protocol, payload []byte, r *Receiver) (*Message, error) {
	s, ok := simpleSuite(p.Version)
	if !ok || p.Type != TypeSimple {
		return nil, fmt.Errorf("protocol %v: %w", p, ErrUnknownProtocol)
	}
	if len(payload) > MaxMessageSize {
		return nil, fmt.Errorf("%d bytes: %w", len(payload), ErrMalformed)
	}
	var m wire.STPSimple
	if err := proto.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	if hasForeign(&m, true) {
		return nil, fmt.Errorf("virtual or unknown field on the wire: %w", ErrMalformed)
	}
	// Omitted version fields take the draft's defaults (§2.3); in v3 they
	// must name the v3 algorithms.
	if err := checkSuite(s, m.SignatureVersion, m.EasymBlockVersion, m.EsymBlockVersion, m.HmacVersion); err != nil {
		return nil, err
	}
	if m.RandomNonce == nil || m.Sender == nil || m.Destination == nil || m.MessageSentMiliUTC == nil ||
		m.Signature == nil || m.Iv == nil || m.EasymBlock == nil || m.EsymBlock == nil || m.Hmac == nil {
		return nil, fmt.Errorf("required field missing: %w", ErrMalformed)
	}
	// The intended recipient checks the destination cheaply before any
	// private-key operation (§2.3, destination discussion).
	ok, err := matchDestination(r, m.GetDestinationType(), m.GetDestination(), m.GetRandomNonce())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("destination %q: %w", m.GetDestination(), ErrNotForMe)
	}
	encKey, macKey, err := unwrapKeys(s.key, r, m.EasymBlock)
	if err != nil {
		return nil, err
	}
	v := &virtualFields{encKey: encKey, macKey: macKey, protocol: p}
	sigList, macList := simpleLists(p.Version)
	// The HMAC covers the ciphertext: check it before decrypting (§2.3,
	// "helps to avoid chosen ciphertext attack").
	covered, err := coveredBytes(&m, macList, v)
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
	if covered, err = coveredBytes(&m, sigList, v); err != nil {
		return nil, fmt.Errorf("signed bytes: %w", err)
	}
	if err := verify(s.sig, cert, covered, m.Signature); err != nil {
		return nil, fmt.Errorf("sender %s: %w", m.GetSender(), err)
	}
	return accept(p, &m, m.SequenceNumber, v.payload, r)
}
