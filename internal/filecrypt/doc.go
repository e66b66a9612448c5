// Package filecrypt is the cryptographic core of end-to-end encrypted files
// and voice messages (seed 000 §6, DESIGN.md §6, docs/files.md).
//
// A recipient device pre-generates half-key slots for each contact: a fresh
// X25519 key pair and ML-KEM-768 key pair per slot, signed by the device and
// sealed (HPKE, MLKEM768X25519) to the contact's devices. A sender opens one
// slot, proves to the node that it did (ProveSlot, VerifySlotProof), gets the
// slot's second nonce, and encrypts: the content once under a random file
// key with a chunked STREAM AEAD (AES-256-GCM, 64 KiB chunks), the metadata
// apart, and the file key wrapped per recipient device with that device's
// slot (so the file stays secret after the recipient's long-term keys leak
// once the slot's private half is destroyed) and for the sender's other
// devices with their message keys. The header that carries the wrapped keys
// is signed by the sender's device key.
//
// The package does no I/O beyond the io.Reader and io.Writer it is given and
// keeps no state: storage of slot private halves, the node's slot service and
// the transport wrap it from outside. Every decoder returns an error wrapping
// a sentinel of errors.go on bad input and never panics.
package filecrypt
