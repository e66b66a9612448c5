package ratchet

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// KDF info strings. Each names its role and version so that no two
// derivations in PhoneX share an HKDF context.
const (
	// infoPQXDH is the PQXDH "info" parameter (PQXDH §2.1), naming the
	// application, curve, hash and KEM.
	infoPQXDH = "PhoneX_PQXDH_CURVE25519_SHA-256_ML-KEM-768"
	// infoRoot is the application-specific info of KDF_RK (Double Ratchet §5.2).
	infoRoot = "PhoneX_DoubleRatchet_Root_v1"
	// infoMessage is the info of the HKDF inside ENCRYPT (Double Ratchet §5.2).
	infoMessage = "PhoneX_DoubleRatchet_MessageKeys_v1"
	// infoFanout derives the body key and nonce of a fan-out message.
	infoFanout = "PhoneX_Fanout_Body_v1"
)

const (
	keySize = 32 // root, chain and message keys
	tagSize = sha256.Size
)

// kdfRK is KDF_RK(rk, dh_out) of Double Ratchet §5.2: HKDF-SHA-256 with rk as
// salt and dh_out as input key material; the 64 output bytes are the new root
// key and a chain key.
func kdfRK(rk [keySize]byte, dhOut []byte) (newRK, ck [keySize]byte) {
	out, err := hkdf.Key(sha256.New, dhOut, rk[:], infoRoot, 2*keySize)
	if err != nil {
		// Only reachable for an output length above 255 hash blocks.
		return newRK, ck
	}
	copy(newRK[:], out[:keySize])
	copy(ck[:], out[keySize:])
	clear(out)
	return newRK, ck
}

// kdfCK is KDF_CK(ck) of Double Ratchet §5.2: HMAC-SHA-256 keyed by the chain
// key, over the single byte 0x01 for the message key and 0x02 for the next
// chain key.
func kdfCK(ck [keySize]byte) (next, mk [keySize]byte) {
	m := hmac.New(sha256.New, ck[:])
	m.Write([]byte{0x01})
	m.Sum(mk[:0])
	m.Reset()
	m.Write([]byte{0x02})
	m.Sum(next[:0])
	return next, mk
}

// kdfPQXDH is KDF(KM) of PQXDH §2.2: HKDF-SHA-256 over F || KM, F being 32
// 0xFF bytes (the X25519 case), with a zero salt of hash length and the info
// string of §2.1; 32 output bytes.
func kdfPQXDH(km []byte) [keySize]byte {
	ikm := make([]byte, 0, 32+len(km))
	ikm = append(ikm, bytes.Repeat([]byte{0xFF}, 32)...)
	ikm = append(ikm, km...)
	var sk [keySize]byte
	out, err := hkdf.Key(sha256.New, ikm, make([]byte, sha256.Size), infoPQXDH, keySize)
	clear(ikm)
	if err != nil {
		return sk
	}
	copy(sk[:], out)
	clear(out)
	return sk
}

// messageKeys expands a message key into the AES-256 key, HMAC-SHA-256 key
// and CBC IV of ENCRYPT (Double Ratchet §5.2): HKDF-SHA-256, zero salt, 80
// bytes.
func messageKeys(mk [keySize]byte) (encKey, authKey []byte, iv []byte) {
	out, err := hkdf.Key(sha256.New, mk[:], make([]byte, sha256.Size), infoMessage, 80)
	if err != nil {
		return make([]byte, 32), make([]byte, 32), make([]byte, 16)
	}
	return out[:32], out[32:64], out[64:80]
}

// seal is ENCRYPT(mk, plaintext, associated_data) of Double Ratchet §5.2:
// AES-256-CBC with PKCS#7 padding, then HMAC-SHA-256 over the associated data
// and the ciphertext, appended untruncated. Because every message key is used
// for exactly one message, the derived IV is never reused under a key.
func seal(mk [keySize]byte, plaintext, assoc []byte) []byte {
	encKey, authKey, iv := messageKeys(mk)
	defer clear(encKey)
	defer clear(authKey)
	block, _ := aes.NewCipher(encKey) // 32-byte key: cannot fail
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	ct := make([]byte, len(plaintext)+pad, len(plaintext)+pad+tagSize)
	copy(ct, plaintext)
	for i := len(plaintext); i < len(ct); i++ {
		ct[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, ct)
	m := hmac.New(sha256.New, authKey)
	m.Write(assoc)
	m.Write(ct)
	return m.Sum(ct)
}

// open reverses seal. The tag is checked in constant time before any
// decryption, so padding errors are never observable.
func open(mk [keySize]byte, sealed, assoc []byte) ([]byte, error) {
	if len(sealed) < aes.BlockSize+tagSize || (len(sealed)-tagSize)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("ciphertext of %d bytes: %w", len(sealed), ErrDecrypt)
	}
	encKey, authKey, iv := messageKeys(mk)
	defer clear(encKey)
	defer clear(authKey)
	ct, tag := sealed[:len(sealed)-tagSize], sealed[len(sealed)-tagSize:]
	m := hmac.New(sha256.New, authKey)
	m.Write(assoc)
	m.Write(ct)
	if !hmac.Equal(m.Sum(nil), tag) {
		return nil, ErrDecrypt
	}
	block, _ := aes.NewCipher(encKey)
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, ErrDecrypt
	}
	// The tag already authenticated these bytes; the padding check only
	// guards against a sender that does not follow PKCS#7.
	want := bytes.Repeat([]byte{byte(pad)}, pad)
	if subtle.ConstantTimeCompare(pt[len(pt)-pad:], want) != 1 {
		return nil, ErrDecrypt
	}
	return pt[:len(pt)-pad], nil
}

// concatAD is CONCAT(ad, header) of Double Ratchet §3.1: the session's
// associated data and the caller's, each length-prefixed so the pair is
// parseable, followed by the encoded header bytes.
func concatAD(sessionAD, callerAD, header []byte) []byte {
	out := make([]byte, 0, 8+len(sessionAD)+len(callerAD)+len(header))
	out = binary.BigEndian.AppendUint32(out, uint32(len(sessionAD)))
	out = append(out, sessionAD...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(callerAD)))
	out = append(out, callerAD...)
	return append(out, header...)
}
