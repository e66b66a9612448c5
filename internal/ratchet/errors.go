package ratchet

import "errors"

var (
	// ErrDuplicate reports a message that was already decrypted, or whose
	// skipped message key has since been evicted. The session is unchanged.
	ErrDuplicate = errors.New("ratchet: duplicate or replayed message")

	// ErrTooManySkipped reports a message that would need more than the
	// per-chain bound of skipped message keys. The session is unchanged.
	ErrTooManySkipped = errors.New("ratchet: too many skipped messages")

	// ErrDecrypt reports a message whose authentication failed. The session
	// is unchanged.
	ErrDecrypt = errors.New("ratchet: message authentication failed")

	// ErrMalformed reports bytes that do not parse as the expected structure.
	ErrMalformed = errors.New("ratchet: malformed input")

	// ErrVersion reports an encoding version this package does not know.
	ErrVersion = errors.New("ratchet: unsupported version")

	// ErrNoSendingChain reports an attempt to send on a responder session
	// before it has received its first message (Double Ratchet §3.3).
	ErrNoSendingChain = errors.New("ratchet: session cannot send before it has received a message")

	// ErrSignature reports a prekey or identity binding signature that does
	// not verify.
	ErrSignature = errors.New("ratchet: bad signature")

	// ErrPrekeyNotFound reports a prekey id the PrekeyStore does not hold,
	// for example a one-time prekey that was already used.
	ErrPrekeyNotFound = errors.New("ratchet: prekey not found or already used")

	// ErrIdentityChanged reports a peer device that presents an identity key
	// other than the one pinned for it. Callers must surface it to the user.
	ErrIdentityChanged = errors.New("ratchet: peer identity key changed")

	// ErrNotRecipient reports a fan-out message that does not list this
	// device among its recipients.
	ErrNotRecipient = errors.New("ratchet: device is not a recipient of this message")
)
