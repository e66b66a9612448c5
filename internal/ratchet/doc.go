// Package ratchet is PhoneX's end-to-end session engine for text: PQXDH key
// agreement, the Double Ratchet, and a per-device fan-out in the manner of
// Linphone's lime.
//
// It follows Signal's specifications:
//
//   - "The PQXDH Key Agreement Protocol" (revision 3): §2 parameters and
//     notation, §3.2 publishing keys, §3.3 sending and §3.4 receiving the
//     initial message.
//   - "The Double Ratchet Algorithm": §3 (state, initialisation, encrypting,
//     decrypting), §5.1 integration with the key agreement and §5.2 the
//     recommended algorithms, which this package uses (X25519, HKDF-SHA-256,
//     HMAC-SHA-256 with the constants 0x01 and 0x02, AES-256-CBC with
//     HMAC-SHA-256).
//
// The package is a pure protocol engine: it reads no sockets, starts no
// goroutines and keeps no clock. Randomness comes from an io.Reader the caller
// injects; sessions serialise to bytes (Session.MarshalBinary) so the client
// keeps them in its encrypted database.
//
// Security properties, when the identity keys have been verified (TrustStore
// pins them on first use; the safety number or ZRTP SAS verifies them):
// confidentiality and integrity of each message; forward secrecy (a message
// key is deleted once used, chain keys are one-way); post-compromise security
// (after a full round trip of DH ratchet steps an attacker who copied a state
// can no longer decrypt); replay and duplicate rejection within a session;
// and, through ML-KEM-768 in the key agreement, secrecy of recorded sessions
// against a future quantum computer (the ratchet steps themselves remain
// X25519 only). See docs/ratchet.md for the wire layouts and bounds.
package ratchet
