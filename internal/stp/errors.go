package stp

import "errors"

// Errors callers branch on. Every error returned by Open wraps one of them.
var (
	// ErrMalformed: the bytes do not parse, a required field is missing,
	// or a [VIRTUAL] field was sent on the wire.
	ErrMalformed = errors.New("stp: malformed message")
	// ErrUnknownProtocol: no STP is registered for the protocol type and
	// version of the envelope.
	ErrUnknownProtocol = errors.New("stp: unknown protocol")
	// ErrUnsupported: the protocol or an algorithm version is known but not
	// supported (S/MIME, protocol type 1).
	ErrUnsupported = errors.New("stp: unsupported protocol or algorithm")
	// ErrNotForMe: the destination (or no key slot) names this receiver.
	ErrNotForMe = errors.New("stp: message is not addressed to this receiver")
	// ErrDestination: an authenticated group message whose signed
	// destination does not name this receiver (its keys were re-wrapped
	// for a third party).
	ErrDestination = errors.New("stp: signed destination does not name this receiver")
	// ErrDecrypt: the key block or the ciphertext cannot be opened.
	ErrDecrypt = errors.New("stp: cannot decrypt")
	// ErrBadMAC: the HMAC does not verify.
	ErrBadMAC = errors.New("stp: bad HMAC")
	// ErrBadSignature: the signature does not verify with the sender's key.
	ErrBadSignature = errors.New("stp: bad signature")
	// ErrUnknownSender: no certificate is known for the sender.
	ErrUnknownSender = errors.New("stp: unknown sender")
	// ErrTimestamp: the message was sent outside the accepted time window.
	ErrTimestamp = errors.New("stp: timestamp outside the accepted window")
	// ErrReplay: the (sender, nonce) pair was already accepted.
	ErrReplay = errors.New("stp: replayed message")
)
