package api

import "time"

// Paths of the directory's private API (docs/directory.md). Every one
// needs the device certificate. Numbers and hashes travel in bodies, never
// in paths, so no access log can hold them.
const (
	PathDirClaims       = "/v1/directory/claims"       // POST: begin a claim; POST /{id}: answer it
	PathDirNotices      = "/v1/directory/notices"      // GET: take this device's notices (?ref= one claim's)
	PathDirReplacements = "/v1/directory/replacements" // DELETE /{id}: cancel a pending replacement
	PathDirLookup       = "/v1/directory/lookup"       // POST: one number or SIP address
	PathDirDiscover     = "/v1/directory/discover"     // POST: hashed numbers
)

// Error codes of the directory.
const (
	CodeNumberTaken  = "number_taken"  // another account publishes the number
	CodeClaimLocked  = "claim_locked"  // too many wrong codes: the claim is gone
	CodeClaimUnknown = "claim_unknown" // no such open claim of this device (expired?)
)

// States of a publication.
const (
	DirPublished          = "published"
	DirReplacementPending = "replacement_pending"
)

// DirClaimBegin asks for a one-time code for a number (+ and 8-15 digits).
type DirClaimBegin struct {
	Number string `json:"number"`
}

// DirClaimBegun answers it: the code went to Devices devices of the account
// as a claim_code notice.
type DirClaimBegun struct {
	Claim   string    `json:"claim"`
	Number  string    `json:"number"`
	Devices int       `json:"devices"`
	Expires time.Time `json:"expires"`
}

// DirClaimProve answers a claim with its code.
type DirClaimProve struct {
	Code string `json:"code"`
}

// DirKey is a published device certificate (DER).
type DirKey struct {
	Device string `json:"device"`
	Cert   []byte `json:"cert"`
}

// DirPending is a replacement waiting out its delay.
type DirPending struct {
	Replacement string    `json:"replacement"`
	Device      string    `json:"device"` // the device that asked
	Effective   time.Time `json:"effective"`
	Keys        []DirKey  `json:"keys,omitempty"`
}

// DirEntry is one published number.
type DirEntry struct {
	Number    string      `json:"number"`
	AOR       string      `json:"aor"` // user@domain, the NAPTR target sip:user@domain
	Keys      []DirKey    `json:"keys"`
	Published time.Time   `json:"published"`
	Pending   *DirPending `json:"pending,omitempty"`
}

// DirPublication answers a proved claim: the number is published, or a
// replacement of its keys waits (Entry.Pending).
type DirPublication struct {
	State string   `json:"state"`
	Entry DirEntry `json:"entry"`
}

// DirNotice is what the directory tells a device once.
type DirNotice struct {
	Kind       string     `json:"kind"` // claim_code, replacement
	Number     string     `json:"number"`
	Ref        string     `json:"ref"` // the claim or the replacement
	Code       string     `json:"code,omitempty"`
	FromDevice string     `json:"from_device"`
	Effective  *time.Time `json:"effective,omitempty"`
	Created    time.Time  `json:"created"`
}

// DirNotices answers GET PathDirNotices.
type DirNotices struct {
	Notices []DirNotice `json:"notices"`
}

// DirLookup names one number or one SIP address (user@domain).
type DirLookup struct {
	Number string `json:"number,omitempty"`
	AOR    string `json:"aor,omitempty"`
}

// DirEntries answers a lookup.
type DirEntries struct {
	Entries []DirEntry `json:"entries"`
}

// MaxDiscover is the most hashes one discovery carries.
const MaxDiscover = 1000

// DirDiscover carries discovery hashes (e164.Hash) of numbers.
type DirDiscover struct {
	Hashes [][]byte `json:"hashes"`
}

// DirMatch is a published number whose hash was asked for.
type DirMatch struct {
	Hash []byte `json:"hash"`
	DirEntry
}

// DirDiscovered answers a discovery: only the hashes that match.
type DirDiscovered struct {
	Matches []DirMatch `json:"matches"`
}
