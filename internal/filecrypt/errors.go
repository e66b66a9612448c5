package filecrypt

import "errors"

// Errors callers branch on. Every error returned by a decoder or an Open
// wraps one of them.
var (
	// ErrMalformed: bytes that do not parse as the format they claim.
	ErrMalformed = errors.New("filecrypt: malformed input")
	// ErrVersion: a format or algorithm version this code does not know.
	ErrVersion = errors.New("filecrypt: unsupported version")

	// ErrBadSignature: a slot or header signature does not verify with the
	// signer's certificate, or the certificate is not the one named.
	ErrBadSignature = errors.New("filecrypt: bad signature")
	// ErrSealed: a sealed slot cannot be opened by this device.
	ErrSealed = errors.New("filecrypt: sealed slot is not for this device")
	// ErrSlotExpired: the slot's expiry has passed.
	ErrSlotExpired = errors.New("filecrypt: slot expired")
	// ErrSlotBinding: the slot names other identities than the ones using it.
	ErrSlotBinding = errors.New("filecrypt: slot bound to other identities")
	// ErrSlotProof: the proof of opening a slot does not match its hash.
	ErrSlotProof = errors.New("filecrypt: slot proof does not match")
	// ErrSlotDestroyed: the slot's private half was destroyed (already used).
	ErrSlotDestroyed = errors.New("filecrypt: slot private half destroyed")
	// ErrWrongSlot: the file was encrypted to a slot other than this one.
	ErrWrongSlot = errors.New("filecrypt: file uses another slot")
	// ErrNotForMe: the header has no wrapped key for this device.
	ErrNotForMe = errors.New("filecrypt: no wrapped key for this device")
	// ErrUnwrap: a wrapped file key does not authenticate.
	ErrUnwrap = errors.New("filecrypt: cannot unwrap the file key")
	// ErrMetadata: the metadata block does not match the header or does not
	// authenticate.
	ErrMetadata = errors.New("filecrypt: metadata does not authenticate")

	// ErrChunkAuth: a chunk does not authenticate (altered ciphertext or key).
	ErrChunkAuth = errors.New("filecrypt: chunk altered")
	// ErrReordered: a chunk authenticates, but at another position: chunks
	// were swapped, dropped from the middle or replayed.
	ErrReordered = errors.New("filecrypt: chunks reordered")
	// ErrTruncated: the content ends before its final chunk.
	ErrTruncated = errors.New("filecrypt: content truncated")
	// ErrTrailingData: bytes follow the final chunk.
	ErrTrailingData = errors.New("filecrypt: data after the final chunk")
	// ErrSize: the content's length or hash differs from the signed header
	// or the metadata.
	ErrSize = errors.New("filecrypt: content does not match its declared size or hash")
)
