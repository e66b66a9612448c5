package zrtp

import "strings"

// b32Alphabet is the base32 alphabet of RFC 6189 §5.1.6.
const b32Alphabet = "ybndrfg8ejkmcpqxot1uwisza345h769"

// SASBase32 renders the leftmost 20 bits of sasvalue as four base32
// characters, most significant quintet first (§5.1.6).
func SASBase32(sasValue uint32) string {
	var out [4]byte
	shift := 27
	for i := range out {
		out[i] = b32Alphabet[(sasValue>>uint(shift))&31]
		shift -= 5
	}
	return string(out[:])
}

// SASBase256 renders the leftmost 16 bits of sasvalue as two words of the
// PGP word list: the first byte from the even list, the second from the odd
// list (§5.1.6).
func SASBase256(sasValue uint32) string {
	return pgpEven[byte(sasValue>>24)] + " " + pgpOdd[byte(sasValue>>16)]
}

// PGPWords renders bytes with the PGP word list, alternating even and odd
// words starting with even.
func PGPWords(b []byte) string {
	words := make([]string, len(b))
	for i, c := range b {
		if i%2 == 0 {
			words[i] = pgpEven[c]
		} else {
			words[i] = pgpOdd[c]
		}
	}
	return strings.Join(words, " ")
}

// RenderSAS renders sasvalue with the given SAS type; it returns "" for an
// unknown type.
func RenderSAS(sasType Algo, sasValue uint32) string {
	switch sasType {
	case B32:
		return SASBase32(sasValue)
	case B256:
		return SASBase256(sasValue)
	}
	return ""
}
