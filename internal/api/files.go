package api

import "time"

// Paths of the file service (docs/files-node.md). Every one needs the
// device certificate (mutual TLS).
const (
	PathFileSlots     = "/v1/files/slots"       // PUT: upload slots; GET: counts per contact
	PathFileSlotTake  = "/v1/files/slots/take"  // POST: step 1, one sealed slot per recipient device
	PathFileSlotProve = "/v1/files/slots/prove" // POST: step 2, nonce1 for nonce2
	PathFiles         = "/v1/files"             // POST: create an upload; GET: list
	// PathFiles + "/{id}": HEAD offset, PATCH append, GET content (Range)
	// PathFiles + "/{id}/ack": POST, a recipient device has the file
)

// Error codes of the file service.
const (
	CodeNotContact      = "not_contact"      // the two accounts are not each other's contacts
	CodeNoSlot          = "no_slot"          // no ready slot, or the upload names none for a device
	CodeSlotUnknown     = "slot_unknown"     // no such slot of that device
	CodeSlotNotYours    = "slot_not_yours"   // taken by another device
	CodeSlotExpired     = "slot_expired"     // the slot or its take expired
	CodeSlotUsed        = "slot_used"        // an upload already used it
	CodeSlotNotProven   = "slot_not_proven"  // step 2 not done
	CodeSlotProof       = "slot_proof"       // the proof does not match the stored hash
	CodeSlotNonce       = "slot_nonce"       // nonce2 does not match
	CodeSlotsFull       = "slots_full"       // beyond the per-contact cap
	CodeSlotExists      = "slot_exists"      // slot id already stored
	CodeFileTooLarge    = "file_too_large"   // declared size above the node's maximum
	CodeQuota           = "quota_exceeded"   // the account's stored bytes would exceed its quota
	CodePairCap         = "pair_cap"         // too many stored files between the two accounts
	CodeOffsetMismatch  = "offset_mismatch"  // Upload-Offset is not the node's offset
	CodeBeyondSize      = "beyond_size"      // a chunk runs past the declared size
	CodeUploadComplete  = "upload_complete"  // nothing left to upload
	CodeStorageFull     = "storage_full"     // the node's disk is full (507)
	CodeFileUnavailable = "file_unavailable" // not complete, expired, or acknowledged
)

// Wire limits of the file service.
const (
	MaxSlotSealed  = 16 << 10 // bytes of one sealed slot
	MaxSlotsPerPut = 64
	MaxFileHeader  = 40 << 10 // bytes of a file's opaque header and metadata (fits MaxBody as base64 with the other fields)
	SlotIDSize     = 16       // bytes of a slot id; hex on the wire (filecrypt.SlotID)
	SlotProofSize  = 32       // bytes of a slot proof (filecrypt.ProveSlot)
	Nonce2Size     = 32
)

// Headers of the resumable upload (after tus core 1.0.0 §Headers).
const (
	HeaderUploadOffset = "Upload-Offset"
	HeaderUploadLength = "Upload-Length"
	ContentTypeOffset  = "application/offset+octet-stream"
	// HeaderError carries the error code of an answer without a body
	// (HEAD).
	HeaderError = "Phonex-Error"
)

// FileSlot is one half-key slot as the recipient device uploads it
// (filecrypt.SlotOffer).
type FileSlot struct {
	ID        string `json:"id"`         // hex of the 16-byte slot id
	Sealed    []byte `json:"sealed"`     // opaque to the node
	ProofHash []byte `json:"proof_hash"` // filecrypt.SlotProofHash, 32 bytes
	Nonce2    []byte `json:"nonce2"`     // handed out after the proof, 32 bytes
}

// FileSlotsPut adds slots of the calling device for one contact.
type FileSlotsPut struct {
	Contact string     `json:"contact"`
	Slots   []FileSlot `json:"slots"`
}

// FileSlotCount is how many slots of the calling device one contact has.
type FileSlotCount struct {
	Contact string `json:"contact"`
	Ready   int    `json:"ready"` // not yet handed out
	Taken   int    `json:"taken"` // handed out, no upload yet
	Max     int    `json:"max"`   // the node's cap: refill up to it
}

// FileSlotCounts answers GET PathFileSlots.
type FileSlotCounts struct {
	Contacts []FileSlotCount `json:"contacts"`
}

// FileSlotTake is step 1: a sealed slot for every device of Recipient.
type FileSlotTake struct {
	Recipient string `json:"recipient"`
}

// TakenSlot is one sealed slot handed to the sender.
type TakenSlot struct {
	Device  string    `json:"device"` // user@domain/device of the recipient device
	SlotID  string    `json:"slot_id"`
	Sealed  []byte    `json:"sealed"`
	Expires time.Time `json:"expires"` // prove and create the upload before
}

// FileSlotTaken answers step 1. Missing lists recipient devices without a
// ready slot: they cannot get this file.
type FileSlotTaken struct {
	Slots   []TakenSlot `json:"slots"`
	Missing []string    `json:"missing"`
}

// FileSlotProve is step 2: the proof of having opened the sealed slot
// (filecrypt.Slot.Proof).
type FileSlotProve struct {
	Device string `json:"device"`
	SlotID string `json:"slot_id"`
	Proof  []byte `json:"proof"`
}

// FileSlotProven answers step 2 with the second nonce.
type FileSlotProven struct {
	Nonce2 []byte `json:"nonce2"`
}

// FileSlotUse names a proven slot in an upload.
type FileSlotUse struct {
	Device string `json:"device"`
	SlotID string `json:"slot_id"`
	Nonce2 []byte `json:"nonce2"`
}

// FileCreate starts an upload to Recipient's devices, one slot each; the
// sender's other devices get the file too (their key is in the header).
type FileCreate struct {
	Recipient string        `json:"recipient"`
	Size      int64         `json:"size"`   // bytes of ciphertext
	Header    []byte        `json:"header"` // opaque: signed header and encrypted metadata
	Slots     []FileSlotUse `json:"slots"`
}

// File states.
const (
	FileUploading = "uploading"
	FileComplete  = "complete"  // offered to the recipient devices
	FileDelivered = "delivered" // every recipient device acknowledged; content deleted
)

// FileCreated answers FileCreate.
type FileCreated struct {
	ID      string    `json:"id"`
	Offset  int64     `json:"offset"`
	Expires time.Time `json:"expires"`
	// Waiting names the recipient's cluster when the node could not reach
	// it: the upload goes on, and the node forwards the file once it can.
	Waiting string `json:"waiting,omitempty"`
}

// FileDevice is one recipient device of an outgoing file.
type FileDevice struct {
	Device    string     `json:"device"`
	Delivered bool       `json:"delivered"`
	At        *time.Time `json:"delivered_at,omitempty"`
}

// OutgoingFile is a file the calling device sends.
type OutgoingFile struct {
	ID        string       `json:"id"`
	Recipient string       `json:"recipient"`
	Size      int64        `json:"size"`
	Offset    int64        `json:"offset"`
	State     string       `json:"state"`
	Created   time.Time    `json:"created"`
	Expires   time.Time    `json:"expires"`
	Devices   []FileDevice `json:"devices"`
	// Waiting names the recipient's cluster while the file waits at this
	// node for it; Refused is that cluster's refusal code.
	Waiting string `json:"waiting,omitempty"`
	Refused string `json:"refused,omitempty"`
}

// IncomingFile is a complete file offered to the calling device.
type IncomingFile struct {
	ID      string    `json:"id"`
	Sender  string    `json:"sender"` // user@domain/device
	Size    int64     `json:"size"`
	Header  []byte    `json:"header"`
	SlotID  string    `json:"slot_id,omitempty"` // empty for the sender's own devices
	Nonce2  []byte    `json:"nonce2,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// FileList answers GET PathFiles.
type FileList struct {
	Incoming []IncomingFile `json:"incoming"`
	Outgoing []OutgoingFile `json:"outgoing"`
}
