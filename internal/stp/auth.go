package stp

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/wire"
)

// SealAuth signs out for destination with STPSimpleAuth v1 (draft §2.5):
// authenticated, not encrypted, for receipts and notifications that carry
// no secret. The signer may be RSA (signature version 1, the default) or
// Ed25519 (version 2).
func SealAuth(from *Sender, destination string, out *Outgoing) ([]byte, error) {
	if err := checkSender(from); err != nil {
		return nil, fmt.Errorf("seal STPSimpleAuth: %w", err)
	}
	if out == nil {
		return nil, fmt.Errorf("seal STPSimpleAuth: no message")
	}
	m := simpleHeader(from, destination, out)
	m.Payload = nonNil(out.Payload)
	v := &virtualFields{payload: m.Payload, protocol: AuthV1}
	covered, err := coveredBytes(m, authSig, v)
	if err != nil {
		return nil, fmt.Errorf("seal STPSimpleAuth: signed bytes: %w", err)
	}
	sv, sig, err := sign(from.Signer, covered)
	if err != nil {
		return nil, fmt.Errorf("seal STPSimpleAuth: %w", err)
	}
	if sv != SigRSA {
		m.SignatureVersion = proto.Int32(sv)
	}
	m.Signature = sig
	return marshalSTP(AuthV1, m)
}

func openAuth(p Protocol, payload []byte, r *Receiver) (*Message, error) {
	msg, err := openAuthMessage(p, payload, r)
	if err != nil {
		return nil, fmt.Errorf("open STPSimpleAuth v%d: %w", p.Version, err)
	}
	return msg, nil
}

func openAuthMessage(p Protocol, payload []byte, r *Receiver) (*Message, error) {
	if p != AuthV1 {
		return nil, fmt.Errorf("protocol %v: %w", p, ErrUnknownProtocol)
	}
	if len(payload) > MaxMessageSize {
		return nil, fmt.Errorf("%d bytes: %w", len(payload), ErrMalformed)
	}
	var m wire.STPSimple
	if err := proto.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	// payload (21) is carried in the clear here; the other virtual fields
	// must still be absent, and so must unknown and encryption fields.
	if hasForeign(&m, false) || m.Iv != nil || m.EasymBlock != nil || m.EsymBlock != nil || m.Hmac != nil ||
		m.EasymBlockVersion != nil || m.EsymBlockVersion != nil || m.HmacVersion != nil {
		return nil, fmt.Errorf("field not part of STPSimpleAuth: %w", ErrMalformed)
	}
	if m.RandomNonce == nil || m.Sender == nil || m.Destination == nil || m.MessageSentMiliUTC == nil ||
		m.Signature == nil || m.Payload == nil {
		return nil, fmt.Errorf("required field missing: %w", ErrMalformed)
	}
	ok, err := matchDestination(r, m.GetDestinationType(), m.GetDestination(), m.GetRandomNonce())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("destination %q: %w", m.GetDestination(), ErrNotForMe)
	}
	cert, err := senderCert(r, m.GetSender(), m.GetCertificateVersion())
	if err != nil {
		return nil, err
	}
	covered, err := coveredBytes(&m, authSig, &virtualFields{payload: m.Payload, protocol: p})
	if err != nil {
		return nil, fmt.Errorf("signed bytes: %w", err)
	}
	if err := verify(pick(m.SignatureVersion, SigRSA), cert, covered, m.Signature); err != nil {
		return nil, fmt.Errorf("sender %s: %w", m.GetSender(), err)
	}
	return accept(p, &m, m.SequenceNumber, m.Payload, r)
}
