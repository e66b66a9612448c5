package operator

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// CodeHash is what the store keeps of an activation code: a domain-separated
// SHA-256 of its canonical form (upper case, no separators), so the code
// itself is never stored.
func CodeHash(code string) []byte {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	h := sha256.Sum256([]byte("phonex/v1/activation\x00" + c))
	return h[:]
}

// NewCode makes an activation code: 16 base32 characters (80 random bits)
// in groups of four.
func NewCode() string {
	b := make([]byte, 10)
	rand.Read(b)
	s := base32.StdEncoding.EncodeToString(b)
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}
