package amp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/phonex/phonex/internal/stp"
)

// Messaging capability strings (draft §2.8.1): "3.1" is the messaging
// prefix, the rest the messaging protocol version. A peer advertising none
// speaks messaging protocol 1.0 (S/MIME), which this implementation does
// not.
const (
	// CapMessaging2 is messaging protocol 2.0: the envelope, STPSimple v1
	// and the AMPs.
	CapMessaging2 = "3.1.2"
	// CapMessaging21 is messaging protocol 2.1: STPSimple v2.
	CapMessaging21 = "3.1.2.1"
	// CapMessaging3 is messaging protocol 3: STPSimple v3 (Ed25519,
	// ML-KEM-768+X25519 HPKE), STPSimpleGroup and STPSimpleAuth.
	CapMessaging3 = "3.1.3"
	// CapMessagingRatchet is the ratchet STP (PQXDH + Double Ratchet).
	CapMessagingRatchet = "3.1.4"
)

// ErrNoCommonProtocol: the two capability sets share no messaging protocol
// this implementation speaks.
var ErrNoCommonProtocol = errors.New("amp: no common messaging protocol")

// preference lists the capabilities from best to worst with the STP each
// selects.
var preference = []struct {
	capability string
	protocol   stp.Protocol
}{
	{CapMessagingRatchet, stp.Protocol{Type: stp.TypeRatchet, Version: 1}},
	{CapMessaging3, stp.SimpleV3},
	{CapMessaging21, stp.SimpleV2},
	{CapMessaging2, stp.SimpleV1},
}

// BestProtocol returns the best STP that both capability sets support, and
// its capability string. Capabilities are matched exactly: a set lists
// every version it speaks.
func BestProtocol(local, remote []string) (stp.Protocol, string, error) {
	for _, p := range preference {
		if slices.Contains(local, p.capability) && slices.Contains(remote, p.capability) {
			return p.protocol, p.capability, nil
		}
	}
	return stp.Protocol{}, "", fmt.Errorf("local %q, remote %q: %w", local, remote, ErrNoCommonProtocol)
}

// Capabilities is the capability set of this implementation, best first;
// withRatchet adds the ratchet STP when it is available.
func Capabilities(withRatchet bool) []string {
	c := []string{CapMessaging3, CapMessaging21, CapMessaging2}
	if withRatchet {
		c = append([]string{CapMessagingRatchet}, c...)
	}
	return c
}

// ErrBadRecord: a capability record does not parse.
var ErrBadRecord = errors.New("amp: malformed capability record")

// recordContext starts every capability record: the device's key also
// signs STP messages and prekeys, so each use is domain-separated.
const recordContext = "PhoneX capability record v1\x00"

// Bounds of a capability record.
const (
	maxRecordCaps   = 32
	maxRecordCapLen = 32
	maxRecordDevice = 512
)

// CapabilityRecord is what a device states about itself, signed with its
// certified key and handed out by the cluster as is: the messaging
// capabilities it speaks and the ids of its current signed X25519 prekey
// and ML-KEM last-resort prekey (0: none). A sender believes capabilities
// only from a record that verifies against the device's certificate, so
// the cluster cannot hide the ratchet from it, and takes a bundle only
// when its signed prekeys are the ones the record names, so the cluster
// cannot serve keys the device has rotated out.
type CapabilityRecord struct {
	Device       string
	Capabilities []string
	Issued       time.Time // millisecond precision
	SignedPrekey uint32
	PQPrekey     uint32
}

// Marshal is the signed encoding: the context string, then
// u16 len | device | u8 count | (u8 len | capability)* | u64 issued (ms since
// the epoch) | u32 signed prekey id | u32 ML-KEM prekey id, big-endian.
func (r *CapabilityRecord) Marshal() ([]byte, error) {
	if r.Device == "" || len(r.Device) > maxRecordDevice || len(r.Capabilities) > maxRecordCaps || r.Issued.UnixMilli() < 0 {
		return nil, fmt.Errorf("capability record of %q: %w", r.Device, ErrBadRecord)
	}
	b := append([]byte(recordContext), byte(len(r.Device)>>8), byte(len(r.Device)))
	b = append(b, r.Device...)
	b = append(b, byte(len(r.Capabilities)))
	for _, c := range r.Capabilities {
		if c == "" || len(c) > maxRecordCapLen {
			return nil, fmt.Errorf("capability %q: %w", c, ErrBadRecord)
		}
		b = append(b, byte(len(c)))
		b = append(b, c...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Issued.UnixMilli()))
	b = binary.BigEndian.AppendUint32(b, r.SignedPrekey)
	return binary.BigEndian.AppendUint32(b, r.PQPrekey), nil
}

// ParseCapabilityRecord decodes what Marshal makes; anything else, trailing
// bytes included, is ErrBadRecord.
func ParseCapabilityRecord(b []byte) (*CapabilityRecord, error) {
	bad := func(what string) (*CapabilityRecord, error) {
		return nil, fmt.Errorf("%s: %w", what, ErrBadRecord)
	}
	rest, ok := bytes.CutPrefix(b, []byte(recordContext))
	if !ok {
		return bad("context")
	}
	take := func(n int) []byte {
		if n > len(rest) {
			return nil
		}
		out := rest[:n]
		rest = rest[n:]
		return out
	}
	l := take(2)
	if l == nil {
		return bad("device length")
	}
	n := int(binary.BigEndian.Uint16(l))
	dev := take(n)
	if n == 0 || n > maxRecordDevice || dev == nil {
		return bad("device")
	}
	r := &CapabilityRecord{Device: string(dev), Capabilities: []string{}}
	cnt := take(1)
	if cnt == nil || int(cnt[0]) > maxRecordCaps {
		return bad("capability count")
	}
	for range int(cnt[0]) {
		l := take(1)
		if l == nil || l[0] == 0 || int(l[0]) > maxRecordCapLen {
			return bad("capability length")
		}
		c := take(int(l[0]))
		if c == nil {
			return bad("capability")
		}
		r.Capabilities = append(r.Capabilities, string(c))
	}
	tail := take(16)
	if tail == nil || len(rest) != 0 {
		return bad("length")
	}
	ms := binary.BigEndian.Uint64(tail)
	if ms > math.MaxInt64 {
		return bad("issued")
	}
	r.Issued = time.UnixMilli(int64(ms)).UTC()
	r.SignedPrekey = binary.BigEndian.Uint32(tail[8:])
	r.PQPrekey = binary.BigEndian.Uint32(tail[12:])
	return r, nil
}

// Ratchet reports whether the record offers the ratchet STP.
func (r *CapabilityRecord) Ratchet() bool {
	return slices.Contains(r.Capabilities, CapMessagingRatchet)
}
