package zrtp

import (
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// Algo is a 4-character algorithm block (RFC 6189 §5.1.2 to §5.1.6), such as
// "S256" or "DH3k", packed big-endian into a uint32.
type Algo uint32

func mkAlgo(s string) Algo {
	return Algo(uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3]))
}

// String returns the block as text, including any trailing space ("B32 ").
func (a Algo) String() string {
	return string([]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
}

// Hash types (§5.1.2).
const (
	S256 Algo = 'S'<<24 | '2'<<16 | '5'<<8 | '6'
	S384 Algo = 'S'<<24 | '3'<<16 | '8'<<8 | '4'
)

// Cipher types (§5.1.3).
const (
	AES1 Algo = 'A'<<24 | 'E'<<16 | 'S'<<8 | '1'
	AES3 Algo = 'A'<<24 | 'E'<<16 | 'S'<<8 | '3'
)

// SRTP auth tag types (§5.1.4).
const (
	HS32 Algo = 'H'<<24 | 'S'<<16 | '3'<<8 | '2'
	HS80 Algo = 'H'<<24 | 'S'<<16 | '8'<<8 | '0'
)

// Key agreement types (§5.1.5). X255 is Curve25519 as named by bzrtp, E255 the
// same algorithm and encoding as named by GNU ZRTP. X2K7 is this package's
// X25519 + ML-KEM-768 hybrid, described in docs/zrtp-hybrid.md.
const (
	DH3k Algo = 'D'<<24 | 'H'<<16 | '3'<<8 | 'k'
	DH2k Algo = 'D'<<24 | 'H'<<16 | '2'<<8 | 'k'
	EC25 Algo = 'E'<<24 | 'C'<<16 | '2'<<8 | '5'
	X255 Algo = 'X'<<24 | '2'<<16 | '5'<<8 | '5'
	E255 Algo = 'E'<<24 | '2'<<16 | '5'<<8 | '5'
	X2K7 Algo = 'X'<<24 | '2'<<16 | 'K'<<8 | '7'
	Mult Algo = 'M'<<24 | 'u'<<16 | 'l'<<8 | 't'
	Prsh Algo = 'P'<<24 | 'r'<<16 | 's'<<8 | 'h'
)

// SAS types (§5.1.6).
const (
	B32  Algo = 'B'<<24 | '3'<<16 | '2'<<8 | ' '
	B256 Algo = 'B'<<24 | '2'<<16 | '5'<<8 | '6'
)

// Default preference lists. The key agreements put our hybrid first; a
// standard peer does not list it and so never gets it. Mult is listed so a
// peer may add streams in Multistream mode. The 32-bit SRTP tag comes
// first: both are mandatory (§5.1.5), and on voice in 120 ms packets the
// 6 bytes a packet HS80 adds are 0.4 kbit/s of a 20 kbit/s budget, which
// the codec puts to better use. A forged packet passes a 32-bit tag with
// probability 2^-32 per try, and what it would buy is one packet of noise
// in the call: no key, no replay (RFC 3711 §7.5 weighs short tags this
// way for voice); SRTCP keeps its 80-bit tag (RFC 3711 §3.4).
var (
	DefaultHashes        = []Algo{S256, S384}
	DefaultCiphers       = []Algo{AES1, AES3}
	DefaultAuthTags      = []Algo{HS32, HS80}
	DefaultKeyAgreements = []Algo{X2K7, X255, E255, DH3k, EC25, Mult}
	DefaultSASTypes      = []Algo{B32, B256}
)

// Mandatory algorithms are implicitly at the end of every Hello list (§5.2).
var mandatory = [5][]Algo{
	{S256},
	{AES1},
	{HS32, HS80},
	{DH3k},
	{B32},
}

func supportedIn(kind int, a Algo) bool {
	switch kind {
	case kindHash:
		return a == S256 || a == S384
	case kindCipher:
		return a == AES1 || a == AES3
	case kindAuth:
		return a == HS32 || a == HS80
	case kindKA:
		return a == DH3k || a == EC25 || a == X255 || a == E255 || a == X2K7 || a == Mult
	case kindSAS:
		return a == B32 || a == B256
	}
	return false
}

const (
	kindHash = iota
	kindCipher
	kindAuth
	kindKA
	kindSAS
)

// withMandatory returns list with the mandatory algorithms of kind appended
// when missing.
func withMandatory(kind int, list []Algo) []Algo {
	out := append([]Algo(nil), list...)
	for _, m := range mandatory[kind] {
		if !containsAlgo(out, m) {
			out = append(out, m)
		}
	}
	return out
}

func containsAlgo(list []Algo, a Algo) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// common returns the members of mine, in my order, that are also in theirs.
func common(mine, theirs []Algo) []Algo {
	var out []Algo
	for _, a := range mine {
		if containsAlgo(theirs, a) && !containsAlgo(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// kaRank orders DH types from fastest to slowest (§4.1.2); the hybrid is
// ranked slowest so it is chosen only when both ends list it first.
func kaRank(a Algo) int {
	switch a {
	case DH2k:
		return 0
	case X255, E255:
		return 1
	case EC25:
		return 2
	case DH3k:
		return 3
	case X2K7:
		return 9
	}
	return 10
}

// hashAlg is the negotiated hash: it drives hvi, total_hash, s0, the KDF's
// HMAC and the negotiated hash length.
type hashAlg struct {
	id   Algo
	new  func() hash.Hash
	size int
}

func hashFor(a Algo) (hashAlg, bool) {
	switch a {
	case S256:
		return hashAlg{S256, sha256.New, 32}, true
	case S384:
		return hashAlg{S384, sha512.New384, 48}, true
	}
	return hashAlg{}, false
}

// cipherKeyLen is the AES key length in bytes of a cipher type.
func cipherKeyLen(a Algo) int {
	switch a {
	case AES1:
		return 16
	case AES3:
		return 32
	}
	return 0
}
