package amp

import (
	"errors"
	"fmt"
	"slices"

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
