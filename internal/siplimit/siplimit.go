// Package siplimit is the one size limit of a SIP MESSAGE body, shared by
// the device and the cluster so that what a device sends is what the
// cluster accepts and what the cluster delivers is what a device reads.
package siplimit

// MaxMessage is the largest SIP message the SIP stack (sipgo) reads from a
// stream: past it, it drops the connection instead of answering, so no
// limit of ours may sit above it.
const MaxMessage = 65535

// HeaderReserve is room for the headers of a MESSAGE as the device sends it
// and as the cluster forwards it (Via, From, To, Call-ID, CSeq, Contact,
// P-Asserted-Identity, Date, Content-Type, Content-Length, ...), which take
// well under 1 KiB for the longest addresses the cluster accepts.
const HeaderReserve = 2048

// MaxBody is the largest MESSAGE body (the sealed envelope) the cluster
// accepts and a device sends.
const MaxBody = MaxMessage - HeaderReserve
