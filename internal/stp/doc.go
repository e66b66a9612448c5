// Package stp implements the secure transport protocols (STPs) of the PhoneX
// message protocol (messaging protocol draft v2, §2): the envelope
// dispatcher, STPSimple v1 and v2 as the draft specifies them, STPSimple v3
// (Ed25519, HPKE with ML-KEM-768+X25519, AES-256-GCM, HMAC-SHA-256),
// STPSimpleAuth (signed, not encrypted) and STPSimpleGroup (key slots).
//
// An STP delivers an application message (AMP payload) from one device to
// another with confidentiality, integrity and sender authentication. The
// signed and MACed bytes are deterministic protobuf serialisations of the
// fields the draft lists, including its [VIRTUAL] helper fields; the exact
// lists are in fields.go and docs/message-protocol.md.
//
// The package does no I/O: it takes bytes, keys and the time in and gives
// bytes and typed errors out. Keys are standard library types so the device
// layer can plug its own keys in.
package stp
