package ratchet

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Fan-out, after Linphone's lime: the body is encrypted once under a fresh
// random key with AES-256-GCM, and that key travels to each recipient device
// through the sender's ratchet session with it, so every device (the peer's
// and the sender's own other devices alike) keeps forward and
// post-compromise secrecy while the body is sent once.
//
// Cipher body, version 1 (integers big-endian):
//
//	version     1 byte  = 1
//	sender      2-byte length, device id bytes
//	recipients  2-byte count, then each: 2-byte length, device id bytes,
//	            sorted and distinct
//	ciphertext  AES-256-GCM of the body, 16-byte tag appended
//
// Everything before the ciphertext, followed by the caller's associated
// data, is the GCM associated data: the sender and the recipient set are
// bound to the body. Each per-device header is a ratchet message whose
// plaintext is the 32-byte body key and whose associated data binds the
// caller's associated data and SHA-256 of the cipher body.
const (
	fanoutVersion = 1
	fanoutKeySize = 32
	// MaxFanoutRecipients bounds the recipient list a decoder accepts.
	MaxFanoutRecipients = 1024
	maxDeviceIDLen      = 1024
)

const fanoutKeyContext = "PhoneX fanout key v1\x00"

// FanoutBody is a parsed cipher body.
type FanoutBody struct {
	Sender     DeviceID
	Recipients []DeviceID
	Ciphertext []byte

	prefix []byte
}

// ParseFanoutBody decodes a cipher body; nothing is authenticated yet.
func ParseFanoutBody(b []byte) (*FanoutBody, error) {
	r := &reader{b: b}
	if v := r.u8(); r.bad || v != fanoutVersion {
		if r.bad {
			return nil, fmt.Errorf("fan-out body: %w", ErrMalformed)
		}
		return nil, fmt.Errorf("fan-out body version %d: %w", v, ErrVersion)
	}
	id := func() DeviceID {
		n := r.u16()
		if n == 0 || n > maxDeviceIDLen {
			r.bad = true
		}
		return DeviceID(r.take(n))
	}
	f := &FanoutBody{Sender: id()}
	count := r.u16()
	if r.bad || count == 0 || count > MaxFanoutRecipients {
		return nil, fmt.Errorf("fan-out body recipients: %w", ErrMalformed)
	}
	for range count {
		d := id()
		if r.bad {
			return nil, fmt.Errorf("fan-out body recipient: %w", ErrMalformed)
		}
		if n := len(f.Recipients); n > 0 && f.Recipients[n-1] >= d {
			return nil, fmt.Errorf("fan-out body recipients not sorted and distinct: %w", ErrMalformed)
		}
		f.Recipients = append(f.Recipients, d)
	}
	if r.bad || len(r.b) < 16 {
		return nil, fmt.Errorf("fan-out body ciphertext: %w", ErrMalformed)
	}
	f.Ciphertext = r.b
	f.prefix = b[:len(b)-len(r.b)]
	return f, nil
}

// appendFanoutPrefix writes everything a cipher body carries before its
// ciphertext; ids must be sorted and distinct.
func appendFanoutPrefix(b []byte, sender DeviceID, ids []DeviceID) []byte {
	b = append(b, fanoutVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sender)))
	b = append(b, sender...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ids)))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint16(b, uint16(len(id)))
		b = append(b, id...)
	}
	return b
}

func bodyAEAD(key []byte) (cipher.AEAD, []byte, error) {
	out, err := hkdf.Key(sha256.New, key, make([]byte, sha256.Size), infoFanout, 32+12)
	if err != nil {
		return nil, nil, err
	}
	defer clear(out[:32])
	block, err := aes.NewCipher(out[:32])
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, out[32:], nil
}

func fanoutAD(prefix, ad []byte) []byte {
	out := append([]byte(nil), prefix...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(ad)))
	return append(out, ad...)
}

func fanoutKeyAD(cipherBody, ad []byte) []byte {
	h := sha256.Sum256(cipherBody)
	out := append([]byte(fanoutKeyContext), h[:]...)
	return append(out, ad...)
}

// EncryptFanout encrypts body once for every device in sessions (include the
// sender's own other devices) and returns the cipher body, sent to all, and
// one ratchet message per device carrying the body key. ad is the caller's
// associated data (for example the conversation id); the sender's device id
// and the recipient set are bound in any case. A session that cannot send
// yet fails the whole call before any session advances.
func EncryptFanout(r io.Reader, sender DeviceID, body []byte, sessions map[DeviceID]*Session, ad []byte) ([]byte, map[DeviceID][]byte, error) {
	if len(sessions) == 0 || len(sessions) > MaxFanoutRecipients {
		return nil, nil, fmt.Errorf("fan-out to %d devices: %w", len(sessions), ErrMalformed)
	}
	if len(sender) == 0 || len(sender) > maxDeviceIDLen {
		return nil, nil, fmt.Errorf("fan-out sender id: %w", ErrMalformed)
	}
	ids := make([]DeviceID, 0, len(sessions))
	for id, s := range sessions {
		if len(id) == 0 || len(id) > maxDeviceIDLen || s == nil {
			return nil, nil, fmt.Errorf("fan-out recipient %q: %w", id, ErrMalformed)
		}
		if !s.CanSend() {
			return nil, nil, fmt.Errorf("fan-out to %s: %w", id, ErrNoSendingChain)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)

	prefix := appendFanoutPrefix(nil, sender, ids)

	key := make([]byte, fanoutKeySize)
	defer clear(key)
	if _, err := io.ReadFull(orDefault(r), key); err != nil {
		return nil, nil, fmt.Errorf("fan-out key: %w", err)
	}
	aead, nonce, err := bodyAEAD(key)
	if err != nil {
		return nil, nil, fmt.Errorf("fan-out key: %w", err)
	}
	// The key is fresh for this body, so the derived nonce is used once.
	cipherBody := aead.Seal(prefix, nonce, body, fanoutAD(prefix, ad))

	keyAD := fanoutKeyAD(cipherBody, ad)
	headers := make(map[DeviceID][]byte, len(ids))
	for _, id := range ids {
		h, err := sessions[id].Encrypt(key, keyAD)
		if err != nil {
			return nil, nil, fmt.Errorf("fan-out to %s: %w", id, err)
		}
		headers[id] = h
	}
	return cipherBody, headers, nil
}

// DecryptFanout opens a fan-out message on device self, whose ratchet
// session with the sending device is session. The session advances only if
// both the key and the body authenticate.
func DecryptFanout(session *Session, sender, self DeviceID, cipherBody, header, ad []byte) ([]byte, error) {
	f, err := checkFanout(sender, self, cipherBody)
	if err != nil {
		return nil, err
	}
	m, err := ParseMessage(header)
	if err != nil {
		return nil, fmt.Errorf("fan-out header: %w", err)
	}
	key, next, err := session.decrypt(m, fanoutKeyAD(cipherBody, ad))
	if err != nil {
		return nil, fmt.Errorf("fan-out key: %w", err)
	}
	body, err := openFanout(f, key, ad)
	if err != nil {
		return nil, err
	}
	session.commit(next)
	return body, nil
}

// AcceptFanout is DecryptFanout for the first message from a device, whose
// header carries a PQXDH initial message (see AcceptSession). The new
// session exists, and the one-time prekeys are consumed, only if the body
// authenticates too.
func AcceptFanout(r io.Reader, ik *IdentityKeyPair, store PrekeyStore, sender, self DeviceID, cipherBody, header, ad []byte, opts ...Option) (*Session, []byte, error) {
	f, err := checkFanout(sender, self, cipherBody)
	if err != nil {
		return nil, nil, err
	}
	p, err := prepareAccept(r, ik, store, header, fanoutKeyAD(cipherBody, ad), opts)
	if err != nil {
		return nil, nil, fmt.Errorf("fan-out: %w", err)
	}
	body, err := openFanout(f, p.pt, ad)
	if err != nil {
		return nil, nil, err
	}
	if err := p.commit(store); err != nil {
		return nil, nil, fmt.Errorf("fan-out: %w", err)
	}
	return p.s, body, nil
}

func checkFanout(sender, self DeviceID, cipherBody []byte) (*FanoutBody, error) {
	f, err := ParseFanoutBody(cipherBody)
	if err != nil {
		return nil, err
	}
	if f.Sender != sender {
		return nil, fmt.Errorf("fan-out body names sender %q, not %q: %w", f.Sender, sender, ErrMalformed)
	}
	if _, found := slices.BinarySearch(f.Recipients, self); !found {
		return nil, ErrNotRecipient
	}
	return f, nil
}

func openFanout(f *FanoutBody, key, ad []byte) ([]byte, error) {
	if len(key) != fanoutKeySize {
		return nil, fmt.Errorf("fan-out key of %d bytes: %w", len(key), ErrMalformed)
	}
	aead, nonce, err := bodyAEAD(key)
	clear(key)
	if err != nil {
		return nil, fmt.Errorf("fan-out key: %w", err)
	}
	body, err := aead.Open(nil, nonce, f.Ciphertext, fanoutAD(f.prefix, ad))
	if err != nil {
		return nil, fmt.Errorf("fan-out body: %w", errors.Join(ErrDecrypt, err))
	}
	return body, nil
}
