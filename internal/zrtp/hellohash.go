package zrtp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// FormatHelloHash returns the a=zrtp-hash value for a Hello message:
// the version, a space and the SHA-256 of the message in hex (§8.1). The
// packet framing is not hashed.
func FormatHelloHash(helloMsg []byte) string {
	sum := sha256.Sum256(helloMsg)
	return Version + " " + hex.EncodeToString(sum[:])
}

// parseHelloHash accepts "1.10 <hex>" or the bare hex of an a=zrtp-hash.
func parseHelloHash(attr string) ([]byte, error) {
	attr = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(attr), "a=zrtp-hash:"))
	if v, h, ok := strings.Cut(attr, " "); ok {
		if v != Version {
			return nil, fmt.Errorf("zrtp: zrtp-hash version %q not supported", v)
		}
		attr = strings.TrimSpace(h)
	}
	b, err := hex.DecodeString(attr)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("zrtp: zrtp-hash %q is not 64 hex digits", attr)
	}
	return b, nil
}

// CheckHelloHash checks a received Hello message against the peer's
// signalled a=zrtp-hash value.
func CheckHelloHash(attr string, helloMsg []byte) error {
	want, err := parseHelloHash(attr)
	if err != nil {
		return err
	}
	got := sha256.Sum256(helloMsg)
	if subtle.ConstantTimeCompare(want, got[:]) != 1 {
		return ErrHelloHashMismatch
	}
	return nil
}
