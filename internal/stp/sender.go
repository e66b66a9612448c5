package stp

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
)

// Sender is the sending device: its address and signing key.
type Sender struct {
	// Address is the sender field, the device address.
	Address string
	// Signer is an *rsa.PrivateKey (signature version 1) or an
	// ed25519.PrivateKey (version 2), or a hardware key of either type.
	Signer crypto.Signer
	// CertificateVersion is sent as certificateVersion when not empty.
	CertificateVersion string
}

// Outgoing is the AMP message an STP carries, with its header fields.
type Outgoing struct {
	AmpType    int32
	AmpVersion int32
	// SequenceNumber is optional (draft §2.3).
	SequenceNumber *uint32
	// Sent is the creation time; zero means time.Now.
	Sent time.Time
	// HashDestination sends destinationType 1: the destination is hidden
	// as hex(SHA-256(decimal(randomNonce) ":" address)) (draft §2.3,
	// "address/hash(nonce:address)").
	HashDestination bool
	// Payload is the AMP message.
	Payload []byte
}

// Destination types (draft §2.3, destinationType).
const (
	DestinationPlain  int32 = 0
	DestinationHashed int32 = 1
)

// HashDestination is the hashed destination for nonce and address.
func HashDestination(nonce uint32, address string) string {
	h := sha256.Sum256([]byte(strconv.FormatUint(uint64(nonce), 10) + ":" + address))
	return hex.EncodeToString(h[:])
}

func (o *Outgoing) sentMillis() uint64 {
	t := o.Sent
	if t.IsZero() {
		t = time.Now()
	}
	return uint64(t.UnixMilli())
}

func randomNonce() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// destinationFor returns the destination field and its type.
func (o *Outgoing) destinationFor(nonce uint32, address string) (string, *int32) {
	if o.HashDestination {
		t := DestinationHashed
		return HashDestination(nonce, address), &t
	}
	return address, nil
}

// matchDestination reports whether dest (of the given type) names one of
// the receiver's addresses.
func matchDestination(r *Receiver, destType int32, dest string, nonce uint32) (bool, error) {
	for _, a := range r.Addresses {
		switch destType {
		case DestinationPlain:
			if dest == a {
				return true, nil
			}
		case DestinationHashed:
			if dest == HashDestination(nonce, a) {
				return true, nil
			}
		default:
			return false, fmt.Errorf("destination type %d: %w", destType, ErrUnsupported)
		}
	}
	return false, nil
}

func checkSender(s *Sender) error {
	if s == nil || s.Signer == nil || s.Address == "" {
		return fmt.Errorf("sender needs an address and a signer")
	}
	return nil
}
