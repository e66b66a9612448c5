package sdk

import (
	"context"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/client"
)

// The number directory (docs/directory.md). A device claims a telephone
// number for its account with a one-time code the cluster delivers to the
// account's devices (standing in for an SMS to the number), then the
// cluster publishes the number's SIP address and the account's device
// certificates. A publication from a device whose key was not published
// (a new device after a lost phone) waits out the cluster's replacement
// delay, and the account's other devices get a notice and may cancel it.
// Lookups and discovery go through the private API, within a per-device
// budget; the cluster neither logs nor stores them.

// Directory types.
type (
	// DirectoryEntry is a published number: its SIP address (the ENUM
	// NAPTR target) and its account's device keys, each compared with
	// what this device pinned.
	DirectoryEntry = client.DirEntry
	// DirectoryKey is one published device key and how it compares with
	// this device's pin: KeyPinned, KeyMismatch or KeyNotPinned.
	DirectoryKey = client.DirKey
	// DirectoryPending is a key replacement waiting out its delay.
	DirectoryPending = client.DirPending
	// Publication is what a publish did: State is PublicationPublished
	// or PublicationPending.
	Publication = client.DirPublication
	// NumberClaim is a claim begun and not answered yet.
	NumberClaim = client.DirClaim
	// DirectoryNotice is a claim's code (Kind "claim_code") or a key
	// replacement asked by another device (Kind "replacement", Ref names
	// it for CancelReplacement).
	DirectoryNotice = client.DirNotice
	// Discovery is the result of Discover.
	Discovery = client.DirDiscovery
)

// Key match states.
const (
	KeyPinned    = client.KeyPinned
	KeyMismatch  = client.KeyMismatch
	KeyNotPinned = client.KeyNotPinned
)

// Publication states.
const (
	PublicationPublished = api.DirPublished
	PublicationPending   = api.DirReplacementPending
)

// Errors of the directory, for errors.Is.
var (
	ErrNumberTaken error = &api.Error{Code: api.CodeNumberTaken, Message: "number published by another account"}
	ErrWrongCode   error = &api.Error{Code: api.CodeCodeInvalid, Message: "wrong code"}
	ErrClaimLocked error = &api.Error{Code: api.CodeClaimLocked, Message: "too many wrong codes"}
	ErrNoClaim           = client.ErrNoClaim
	ErrCodeTimeout       = client.ErrCodeTimeout
)

// PublishNumber claims number (+E164) for this account and publishes it:
// the cluster sends a code to the account's devices, this device waits
// for it (progress gets the steps) and answers.
func (d *Device) PublishNumber(ctx context.Context, number string, progress func(step string)) (Publication, error) {
	return d.p.PublishNumber(ctx, number, progress)
}

// BeginNumberClaim starts a claim without waiting: the code arrives as a
// DirectoryNotice on the account's devices; answer with ProveNumberClaim.
func (d *Device) BeginNumberClaim(ctx context.Context, number string) (NumberClaim, error) {
	return d.p.BeginDirClaim(ctx, number)
}

// ProveNumberClaim answers this device's claim of number with its code.
func (d *Device) ProveNumberClaim(ctx context.Context, number, code string) (Publication, error) {
	return d.p.ProveDirClaim(ctx, number, code)
}

// DirectoryNotices takes this device's directory notices; each is handed
// out once.
func (d *Device) DirectoryNotices(ctx context.Context) ([]DirectoryNotice, error) {
	return d.p.DirNotices(ctx)
}

// CancelReplacement withdraws a pending key replacement (from a device
// whose key is published).
func (d *Device) CancelReplacement(ctx context.Context, id string) error {
	return d.p.CancelDirReplacement(ctx, id)
}

// Lookup finds a number (+E164) or a SIP address (user@domain) in the
// directory.
func (d *Device) Lookup(ctx context.Context, query string) ([]DirectoryEntry, error) {
	return d.p.LookupDirectory(ctx, query)
}

// Discover tells which numbers are published, sending only their
// discovery hashes. What the hashes do not hide: the number space is small
// enough for anyone who sees a hash to find its number.
func (d *Device) Discover(ctx context.Context, numbers []string, progress func(done, total int)) (Discovery, error) {
	return d.p.DiscoverNumbers(ctx, numbers, progress)
}

// LookupDNS finds a number (+E164) or a SIP address (user@domain) in a
// directory zone through server (host:port of an authoritative server or
// a resolver), validating every answer on this device with DNSSEC from
// anchors (DS or DNSKEY records, one a line, as 'phonexd dns ds' prints
// them), never trusting a resolver's AD bit. Anchors given are used alone
// and remembered in the profile once they validated an answer. Nil anchors
// use the home node's anchor (see DirectoryAnchor) with any remembered; an
// empty server uses the DNS server the home node named.
func (d *Device) LookupDNS(ctx context.Context, query, server string, anchors []byte) ([]DirectoryEntry, error) {
	return d.p.LookupDirectoryDNSWith(ctx, query, server, anchors)
}

// ErrNoSavedAnchor: LookupDNS without anchors, and none remembered.
var ErrNoSavedAnchor = client.ErrNoSavedAnchor
