package kdf

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/cloudflare/circl/oprf"
)

// suite is ristretto255-SHA512: its server operations are constant time in the
// private key (RFC 9497 §4.1), unlike circl's P-256 suites.
var suite = oprf.SuiteRistretto255

// ErrOPRF reports a malformed OPRF message.
var ErrOPRF = errors.New("kdf: malformed OPRF message")

// OPRFKey is a server-held OPRF private key.
type OPRFKey struct{ k *oprf.PrivateKey }

// NewOPRFKey makes a fresh random key.
func NewOPRFKey() (OPRFKey, error) {
	k, err := oprf.GenerateKey(suite, rand.Reader)
	if err != nil {
		return OPRFKey{}, fmt.Errorf("oprf key: %w", err)
	}
	return OPRFKey{k}, nil
}

// MarshalBinary encodes the key for sealed storage.
func (k OPRFKey) MarshalBinary() ([]byte, error) { return k.k.MarshalBinary() }

// ParseOPRFKey decodes a key from MarshalBinary.
func ParseOPRFKey(b []byte) (OPRFKey, error) {
	k := new(oprf.PrivateKey)
	if err := k.UnmarshalBinary(suite, b); err != nil {
		return OPRFKey{}, fmt.Errorf("%w: key: %v", ErrOPRF, err)
	}
	return OPRFKey{k}, nil
}

// LogValue keeps the key out of logs.
func (OPRFKey) String() string { return "OPRFKey(redacted)" }

// Evaluate answers a client's blinded element (RFC 9497 §3.3.1 BlindEvaluate).
func (k OPRFKey) Evaluate(blinded []byte) ([]byte, error) {
	if k.k == nil {
		return nil, errors.New("kdf: no OPRF key")
	}
	g := suite.Group()
	e := g.NewElement()
	if len(blinded) == 0 || len(blinded) > 64 {
		return nil, ErrOPRF
	}
	if err := e.UnmarshalBinary(blinded); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOPRF, err)
	}
	if e.IsIdentity() {
		return nil, fmt.Errorf("%w: identity element", ErrOPRF)
	}
	ev, err := oprf.NewServer(suite, k.k).Evaluate(&oprf.EvaluationRequest{Elements: []oprf.Blinded{e}})
	if err != nil {
		return nil, fmt.Errorf("oprf evaluate: %w", err)
	}
	return ev.Elements[0].MarshalBinaryCompress()
}

// FullEvaluate computes the OPRF output directly; used by tests and by the
// cost benchmark that plays an attacker holding k.
func (k OPRFKey) FullEvaluate(input []byte) ([]byte, error) {
	return oprf.NewServer(suite, k.k).FullEvaluate(input)
}

// Blinding is the client's state between Blind and Finalize.
type Blinding struct {
	fin *oprf.FinalizeData
	msg []byte
}

// Blind starts an evaluation of input (RFC 9497 §3.3.1 Blind).
func Blind(input []byte) (*Blinding, error) {
	fin, req, err := oprf.NewClient(suite).Blind([][]byte{input})
	if err != nil {
		return nil, fmt.Errorf("oprf blind: %w", err)
	}
	m, err := req.Elements[0].MarshalBinaryCompress()
	if err != nil {
		return nil, err
	}
	return &Blinding{fin: fin, msg: m}, nil
}

// Message is the blinded element to send to the server.
func (b *Blinding) Message() []byte { return b.msg }

// Finalize turns the server's evaluation into the OPRF output y.
func (b *Blinding) Finalize(evaluated []byte) ([]byte, error) {
	g := suite.Group()
	e := g.NewElement()
	if len(evaluated) == 0 || len(evaluated) > 64 {
		return nil, ErrOPRF
	}
	if err := e.UnmarshalBinary(evaluated); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOPRF, err)
	}
	out, err := oprf.NewClient(suite).Finalize(b.fin, &oprf.Evaluation{Elements: []oprf.Evaluated{e}})
	if err != nil {
		return nil, fmt.Errorf("oprf finalize: %w", err)
	}
	return out[0], nil
}
