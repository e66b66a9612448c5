package tlsrecord

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Record layer limits and types (RFC 8446 §5.1, §5.2).
const (
	headerLen     = 5
	maxPlaintext  = 1 << 14          // TLSPlaintext.length
	maxCiphertext = 1<<14 + 256      // TLSCiphertext.length
	maxInner      = maxPlaintext + 1 // TLSInnerPlaintext with its content type (§5.4)
	tagLen        = 16               // all three AEADs

	typeChangeCipherSpec = 20
	typeAlert            = 21
	typeHandshake        = 22
	typeApplicationData  = 23

	msgKeyUpdate = 24 // HandshakeType key_update (§4)

	levelWarning = 1
	levelFatal   = 2
)

// keyUpdateAfter is how many records one AES-GCM key protects before this
// side updates it: RFC 8446 §5.5 allows up to 2^24.5 full-size records per
// key; 2^23 leaves a wide margin. A variable so tests can lower it.
var keyUpdateAfter uint64 = 1 << 23

// alertTimeout bounds the write of an alert sent before closing.
const alertTimeout = 5 * time.Second

// Alert is a TLS alert description (RFC 8446 §6).
type Alert uint8

const (
	AlertCloseNotify       Alert = 0
	AlertUnexpectedMessage Alert = 10
	AlertBadRecordMAC      Alert = 20
	AlertRecordOverflow    Alert = 22
	AlertIllegalParameter  Alert = 47
	AlertDecodeError       Alert = 50
	AlertInternalError     Alert = 80
)

func (a Alert) String() string {
	switch a {
	case AlertCloseNotify:
		return "close_notify"
	case AlertUnexpectedMessage:
		return "unexpected_message"
	case AlertBadRecordMAC:
		return "bad_record_mac"
	case AlertRecordOverflow:
		return "record_overflow"
	case AlertIllegalParameter:
		return "illegal_parameter"
	case AlertDecodeError:
		return "decode_error"
	case AlertInternalError:
		return "internal_error"
	}
	return fmt.Sprintf("alert(%d)", uint8(a))
}

// AlertError ends a connection: an alert the peer sent (Remote), or one
// sent to the peer for what Reason says.
type AlertError struct {
	Alert  Alert
	Remote bool
	Reason string
}

func (e *AlertError) Error() string {
	if e.Remote {
		return "tls: peer sent alert " + e.Alert.String()
	}
	return "tls: " + e.Reason + " (sent alert " + e.Alert.String() + ")"
}

// ErrSequence is returned when a sequence number would wrap (RFC 8446
// §5.3: terminate rather than wrap).
var ErrSequence = errors.New("tlsrecord: sequence number exhausted")

// Conn is a TLS 1.3 connection after its handshake: application data
// protected under the traffic keys, KeyUpdate and alerts handled. One
// goroutine may read while others write; reads and writes have separate
// state and locks.
type Conn struct {
	raw net.Conn

	rmu   sync.Mutex
	in    half
	hdr   [headerLen]byte
	hdrN  int
	body  *[]byte // pooled: the record being read, then its plaintext until consumed
	bodyN int
	plain []byte  // unread application data, inside *body
	hs    [5]byte // a KeyUpdate being received, possibly over records (§4.6.3)
	hsN   int
	asked bool // we asked the peer to update its key (§5.5) and wait for it
	rerr  error

	wmu  sync.Mutex
	out  half
	werr error

	closed atomic.Bool
}

// New carries raw on as a TLS 1.3 connection whose handshake negotiated
// suite and derived the two application traffic secrets (the peer's,
// which this side reads with, and this side's own). Both sequence
// numbers start at 0, so no record may have been protected under either
// secret yet. New copies the secrets.
func New(raw net.Conn, suiteID uint16, readSecret, writeSecret []byte) (*Conn, error) {
	s, err := suiteByID(suiteID)
	if err != nil {
		return nil, err
	}
	if len(readSecret) != s.hashLen || len(writeSecret) != s.hashLen {
		return nil, fmt.Errorf("tlsrecord: traffic secrets of %d and %d bytes, want %d", len(readSecret), len(writeSecret), s.hashLen)
	}
	c := &Conn{raw: raw}
	c.in.set(s, readSecret)
	c.out.set(s, writeSecret)
	return c, nil
}

// Read returns application data. A timeout leaves a partly received
// record in place for the next Read.
func (c *Conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.plain) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.readRecord(); err != nil {
			return 0, err
		}
	}
	n := copy(b, c.plain)
	c.plain = c.plain[n:]
	if len(c.plain) == 0 {
		c.plain = nil
		putBuf(&c.body)
	}
	return n, nil
}

// readErr classifies an error of the raw connection: a timeout is passed
// on and the read resumes later; anything else ends reading.
func (c *Conn) readErr(err error, midRecord bool) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return err
	}
	if errors.Is(err, io.EOF) {
		// The peer closed without close_notify: at a record boundary
		// this reads as the end (as crypto/tls does), inside a record as
		// a truncation.
		err = io.EOF
		if midRecord || c.hsN > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	putBuf(&c.body)
	c.rerr = err
	return err
}

// readRecord reads and opens one record. It returns nil with no
// plaintext for a record that carried none (a KeyUpdate, a zero-length
// application data record).
func (c *Conn) readRecord() error {
	for c.hdrN < headerLen {
		n, err := c.raw.Read(c.hdr[c.hdrN:])
		c.hdrN += n
		if err != nil && c.hdrN < headerLen {
			return c.readErr(err, c.hdrN > 0)
		}
	}
	length := int(binary.BigEndian.Uint16(c.hdr[3:]))
	if c.body == nil {
		// §5.2: every protected record has the outer type
		// application_data; §5: an unexpected record type (a plaintext
		// alert or change_cipher_spec after the handshake included) is
		// unexpected_message. legacy_record_version is ignored (§5.1),
		// though as part of the additional data it is authenticated.
		if c.hdr[0] != typeApplicationData {
			return c.fail(AlertUnexpectedMessage, fmt.Sprintf("record of type %d after the handshake", c.hdr[0]))
		}
		if length > maxCiphertext {
			return c.fail(AlertRecordOverflow, fmt.Sprintf("record of %d bytes", length))
		}
		if length < tagLen+1 {
			// Too short to hold a tag and a content type: it cannot
			// authenticate.
			return c.fail(AlertBadRecordMAC, "record too short")
		}
		c.body = getBuf(length)
	}
	buf := (*c.body)[:length]
	for c.bodyN < length {
		n, err := c.raw.Read(buf[c.bodyN:])
		c.bodyN += n
		if err != nil && c.bodyN < length {
			return c.readErr(err, true)
		}
	}
	c.hdrN, c.bodyN = 0, 0
	if c.in.seq == math.MaxUint64 {
		return c.fail(AlertInternalError, ErrSequence.Error())
	}
	aead, err := c.in.aead()
	if err != nil {
		return c.fail(AlertInternalError, "read key: "+err.Error())
	}
	var nonce [ivLen]byte
	c.in.nonce(&nonce)
	// §5.2: additional_data = TLSCiphertext.opaque_type ||
	// legacy_record_version || length, the record header as received.
	pt, err := aead.Open(buf[:0], nonce[:], buf, c.hdr[:])
	if err != nil {
		return c.fail(AlertBadRecordMAC, "record authentication failed")
	}
	c.in.seq++
	if len(pt) > maxInner {
		return c.fail(AlertRecordOverflow, fmt.Sprintf("plaintext of %d bytes", len(pt)))
	}
	// §5.4: the content type is the last non-zero byte; zeros after it
	// are padding; a plaintext of zeros only is unexpected_message.
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 {
		return c.fail(AlertUnexpectedMessage, "record without a content type")
	}
	typ, data := pt[i], pt[:i]
	if c.hsN > 0 && typ != typeHandshake {
		// §5.1: a handshake message split over records must not be
		// interleaved with other record types.
		return c.fail(AlertUnexpectedMessage, "record interleaved with a fragmented handshake message")
	}
	switch typ {
	case typeApplicationData:
		if len(data) == 0 {
			// §5.1: zero-length application data may be sent, as
			// traffic analysis countermeasure.
			putBuf(&c.body)
			return c.limitRead()
		}
		c.plain = data
		return c.limitRead()
	case typeAlert:
		// §6: exactly one alert per record, two bytes: level, description.
		if len(data) != 2 {
			return c.fail(AlertDecodeError, fmt.Sprintf("alert record of %d bytes", len(data)))
		}
		a := Alert(data[1])
		putBuf(&c.body)
		if a == AlertCloseNotify {
			// §6.1: close_notify ends the peer's writing; reading sees EOF.
			c.rerr = io.EOF
			return io.EOF
		}
		// §6.2: on any other alert (all are fatal in TLS 1.3, user_canceled
		// is followed by close_notify anyway) the connection ends
		// without an alert in reply.
		c.rerr = &AlertError{Alert: a, Remote: true}
		return c.rerr
	case typeHandshake:
		err := c.handshake(data)
		putBuf(&c.body)
		return err
	}
	return c.fail(AlertUnexpectedMessage, fmt.Sprintf("record of content type %d", typ))
}

// handshake takes a post-handshake handshake record. Only KeyUpdate is
// accepted: a client never sends NewSessionTicket (§4.6.1), and
// post-handshake authentication (§4.6.2) is not offered by this server.
func (c *Conn) handshake(data []byte) error {
	if len(data) == 0 {
		// §5.1: zero-length fragments of handshake type are not sent.
		return c.fail(AlertUnexpectedMessage, "empty handshake record")
	}
	for len(data) > 0 {
		need := 4
		if c.hsN >= 4 {
			need = 5
		}
		n := copy(c.hs[c.hsN:need], data)
		c.hsN += n
		data = data[n:]
		if c.hsN == 4 {
			if c.hs[0] != msgKeyUpdate {
				return c.fail(AlertUnexpectedMessage, fmt.Sprintf("post-handshake message of type %d", c.hs[0]))
			}
			if l := uint32(c.hs[1])<<16 | uint32(c.hs[2])<<8 | uint32(c.hs[3]); l != 1 {
				return c.fail(AlertDecodeError, fmt.Sprintf("KeyUpdate of %d bytes", l))
			}
		}
		if c.hsN == 5 {
			c.hsN = 0
			if len(data) > 0 {
				// §5.1: a message preceding a key change must end its
				// record.
				return c.fail(AlertUnexpectedMessage, "data after a KeyUpdate in its record")
			}
			return c.keyUpdate(c.hs[4])
		}
	}
	return nil
}

// keyUpdate handles a received KeyUpdate (§4.6.3): the peer's sending key
// changes after it; update_requested asks for ours to change too.
func (c *Conn) keyUpdate(request byte) error {
	if request > 1 {
		return c.fail(AlertIllegalParameter, fmt.Sprintf("KeyUpdate request_update %d", request))
	}
	c.in.update()
	c.asked = false
	if request == 0 {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return nil // writing has ended; nothing more will be protected
	}
	// The reply goes out before any further application data, under
	// the write lock so no record slips in between (§4.6.3).
	if err := c.sendKeyUpdateLocked(false); err != nil {
		c.rerr = err
		return err
	}
	return nil
}

// limitRead asks the peer for a new key before its AES-GCM key has
// protected too many records (§5.5), with a KeyUpdate of our own that
// sets update_requested.
func (c *Conn) limitRead() error {
	if !c.in.s.aes || c.asked || c.in.seq < keyUpdateAfter {
		return nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return nil
	}
	if err := c.sendKeyUpdateLocked(true); err != nil {
		return err
	}
	c.asked = true
	return nil
}

// sendKeyUpdateLocked sends a KeyUpdate under the current write key,
// then moves to the next one (§4.6.3, §7.2).
func (c *Conn) sendKeyUpdateLocked(request bool) error {
	msg := [5]byte{msgKeyUpdate, 0, 0, 1, 0}
	if request {
		msg[4] = 1
	}
	if err := c.writeRecordLocked(typeHandshake, msg[:]); err != nil {
		return err
	}
	c.out.update()
	return nil
}

// fail ends the connection for a protocol violation: the alert is sent
// (§6.2) and reading and writing stop.
func (c *Conn) fail(a Alert, reason string) error {
	putBuf(&c.body)
	c.plain = nil
	err := &AlertError{Alert: a, Reason: reason}
	c.rerr = err
	c.wmu.Lock()
	if c.werr == nil {
		c.raw.SetWriteDeadline(time.Now().Add(alertTimeout))
		c.writeRecordLocked(typeAlert, []byte{levelFatal, byte(a)})
		c.werr = err
	}
	c.wmu.Unlock()
	return err
}

// Write sends b as application data, in records of at most 2^14 bytes.
// Any write error ends writing: a record may have gone out in part.
func (c *Conn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	n := 0
	for len(b) > 0 {
		m := min(len(b), maxPlaintext)
		if err := c.writeRecordLocked(typeApplicationData, b[:m]); err != nil {
			return n, err
		}
		n += m
		b = b[m:]
	}
	return n, nil
}

// writeRecordLocked protects and sends one record (§5.2). No padding is
// added (§5.4 leaves it to the sender).
func (c *Conn) writeRecordLocked(typ byte, data []byte) error {
	if typ == typeApplicationData && c.out.s.aes && c.out.seq >= keyUpdateAfter {
		if err := c.sendKeyUpdateLocked(false); err != nil {
			return err
		}
	}
	if c.out.seq == math.MaxUint64 {
		c.werr = ErrSequence
		return c.werr
	}
	aead, err := c.out.aead()
	if err != nil {
		c.werr = fmt.Errorf("tlsrecord: write key: %w", err)
		return c.werr
	}
	inner := len(data) + 1
	bp := getBuf(headerLen + inner + tagLen)
	buf := (*bp)[:headerLen+inner]
	buf[0] = typeApplicationData
	buf[1], buf[2] = 3, 3 // legacy_record_version 0x0303 (§5.1)
	binary.BigEndian.PutUint16(buf[3:], uint16(inner+tagLen))
	copy(buf[headerLen:], data)
	buf[headerLen+len(data)] = typ
	var nonce [ivLen]byte
	c.out.nonce(&nonce)
	rec := aead.Seal(buf[:headerLen], nonce[:], buf[headerLen:], buf[:headerLen])
	c.out.seq++
	_, err = c.raw.Write(rec)
	putBuf(&bp)
	if err != nil {
		c.werr = err
		return err
	}
	return nil
}

// Close sends close_notify (§6.1) unless a write is under way (then the
// Close is taken as breaking it, as crypto/tls does), zeroes the keys of
// the directions not in use, and closes the connection.
func (c *Conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	if c.wmu.TryLock() {
		if c.werr == nil {
			c.raw.SetWriteDeadline(time.Now().Add(alertTimeout))
			c.writeRecordLocked(typeAlert, []byte{levelWarning, byte(AlertCloseNotify)})
			c.werr = net.ErrClosed
		}
		c.out.wipe()
		c.wmu.Unlock()
	}
	if c.rmu.TryLock() {
		// No read is under way (one that is keeps its keys and ends on
		// the closed socket).
		c.rerr = net.ErrClosed
		c.in.wipe()
		c.plain = nil
		putBuf(&c.body)
		c.rmu.Unlock()
	}
	return c.raw.Close()
}

// CloseWrite sends close_notify and ends writing; reading goes on.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	err := c.writeRecordLocked(typeAlert, []byte{levelWarning, byte(AlertCloseNotify)})
	if err == nil {
		c.werr = net.ErrClosed
	}
	return err
}

func (c *Conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }

// Record buffers are borrowed for a record in flight and returned once it
// is sent or its plaintext consumed, so an idle connection holds none.
// Most SIP messages fit the small size.
const smallBuf = 2048

var (
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, headerLen+maxCiphertext); return &b }}
)

func getBuf(n int) *[]byte {
	if n <= smallBuf {
		return smallBufs.Get().(*[]byte)
	}
	return largeBufs.Get().(*[]byte)
}

func putBuf(b **[]byte) {
	if *b == nil {
		return
	}
	if cap(**b) == smallBuf {
		smallBufs.Put(*b)
	} else {
		largeBufs.Put(*b)
	}
	*b = nil
}
