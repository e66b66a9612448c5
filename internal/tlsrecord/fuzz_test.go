package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// sealed returns records protected with the RFC 8448 client secret, as
// a client would send them: each element is one record's content type
// and data.
func sealed(t testing.TB, recs ...[]byte) []byte {
	raw := &bufConn{r: bytes.NewReader(nil)}
	c, err := New(raw, tls.TLS_AES_128_GCM_SHA256, unhex(t, rfcServerSecret), unhex(t, rfcClientSecret))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := c.writeRecordLocked(r[0], r[1:]); err != nil {
			t.Fatal(err)
		}
		if r[0] == typeHandshake && len(r) == 6 && r[1] == msgKeyUpdate {
			c.out.update()
		}
	}
	return raw.w.Bytes()
}

// FuzzRead feeds arbitrary bytes to the record reader after a fixed key
// setup: it must end with EOF or a specific error, never panic or hang.
func FuzzRead(f *testing.F) {
	f.Add(unhex(f, rfcClientRecord))
	f.Add(append(unhex(f, rfcClientRecord), unhex(f, rfcClientAlert)...))
	f.Add(sealed(f, []byte{typeApplicationData, 'h', 'i'}, []byte{typeHandshake, msgKeyUpdate, 0, 0, 1, 0}, []byte{typeApplicationData, 'x'}))
	f.Add(sealed(f, []byte{typeHandshake, msgKeyUpdate, 0, 0, 1, 1}))
	f.Add(sealed(f, []byte{typeHandshake, msgKeyUpdate, 0}, []byte{typeHandshake, 0, 1, 0}))
	f.Add(sealed(f, []byte{typeHandshake, 4, 0, 0, 1, 0}))
	f.Add(sealed(f, []byte{typeAlert, 2, 20}))
	f.Add(sealed(f, []byte{typeAlert, 2}))
	f.Add(sealed(f, []byte{typeApplicationData}, []byte{0, 0, 0}))
	f.Add([]byte{23, 3, 3, 0xff, 0xff})
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte{23, 3, 3, 0, 1, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := New(&bufConn{r: bytes.NewReader(in)}, tls.TLS_AES_128_GCM_SHA256, unhex(t, rfcClientSecret), unhex(t, rfcServerSecret))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		for range len(in) + 2 {
			_, err := c.Read(buf)
			if err == nil {
				continue
			}
			var ae *AlertError
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &ae) {
				t.Fatalf("unspecific error %T: %v", err, err)
			}
			return
		}
		t.Fatal("reader neither ended nor failed")
	})
}

// TestReadErrors: each malformed input gets its alert (RFC 8446 §5, §6).
func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want Alert
	}{
		{"plaintext alert", []byte{21, 3, 3, 0, 2, 2, 40}, AlertUnexpectedMessage},
		{"overflow", []byte{23, 3, 3, 0x41, 0x01}, AlertRecordOverflow},
		{"too short", []byte{23, 3, 3, 0, 1, 0}, AlertBadRecordMAC},
		{"no content type", sealed(t, []byte{0, 0, 0}), AlertUnexpectedMessage},
		{"new session ticket", sealed(t, []byte{typeHandshake, 4, 0, 0, 1, 0}), AlertUnexpectedMessage},
		{"KeyUpdate too long", sealed(t, []byte{typeHandshake, msgKeyUpdate, 0, 0, 2, 0, 0}), AlertDecodeError},
		{"KeyUpdate bad request", sealed(t, []byte{typeHandshake, msgKeyUpdate, 0, 0, 1, 2}), AlertIllegalParameter},
		{"data after KeyUpdate", sealed(t, []byte{typeHandshake, msgKeyUpdate, 0, 0, 1, 0, 24}), AlertUnexpectedMessage},
		{"empty handshake", sealed(t, []byte{typeHandshake}), AlertUnexpectedMessage},
		{"interleaved", sealed(t, []byte{typeHandshake, msgKeyUpdate, 0}, []byte{typeApplicationData, 'x'}), AlertUnexpectedMessage},
		{"long alert", sealed(t, []byte{typeAlert, 1, 0, 0}), AlertDecodeError},
		{"protected change_cipher_spec", sealed(t, []byte{typeChangeCipherSpec, 1}), AlertUnexpectedMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := &bufConn{r: bytes.NewReader(tc.in)}
			c, _ := New(raw, tls.TLS_AES_128_GCM_SHA256, unhex(t, rfcClientSecret), unhex(t, rfcServerSecret))
			_, err := io.ReadAll(c)
			var ae *AlertError
			if !errors.As(err, &ae) || ae.Alert != tc.want || ae.Remote {
				t.Fatalf("got %v, want alert %v", err, tc.want)
			}
			// The alert went out: one record of 5+2+1+16 bytes.
			if raw.w.Len() != 24 {
				t.Errorf("%d bytes written, want one alert record", raw.w.Len())
			}
		})
	}
	t.Run("remote alert", func(t *testing.T) {
		c, _ := New(&bufConn{r: bytes.NewReader(sealed(t, []byte{typeAlert, 2, 40}))}, tls.TLS_AES_128_GCM_SHA256, unhex(t, rfcClientSecret), unhex(t, rfcServerSecret))
		var ae *AlertError
		if _, err := io.ReadAll(c); !errors.As(err, &ae) || !ae.Remote || ae.Alert != 40 {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		rec := unhex(t, rfcClientRecord)
		c, _ := New(&bufConn{r: bytes.NewReader(rec[:30])}, tls.TLS_AES_128_GCM_SHA256, unhex(t, rfcClientSecret), unhex(t, rfcServerSecret))
		if _, err := io.ReadAll(c); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("got %v", err)
		}
	})
}

// FuzzHandshakeReader: whatever the bytes, the reader crypto/tls does its
// handshake on passes them through unchanged and never hands out more
// than the rest of the current record (its header, then its body).
func FuzzHandshakeReader(f *testing.F) {
	f.Add([]byte{22, 3, 1, 0, 2, 1, 2, 23, 3, 3, 0, 1, 9}, uint8(100))
	f.Add([]byte{20, 3, 3, 0, 0, 22, 3, 3, 0, 1, 1}, uint8(3))
	f.Add(unhex(f, rfcClientRecord), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		hc := &handshakeConn{Conn: &bufConn{r: bytes.NewReader(in)}}
		var out []byte
		buf := make([]byte, int(size)+1)
		pos := 0 // where the current record's header starts in in
		for {
			n, err := hc.Read(buf)
			out = append(out, buf[:n]...)
			// A read ends at most at the end of the header or the record.
			if len(out)-pos > headerLen {
				end := pos + headerLen + int(binary.BigEndian.Uint16(in[pos+3:pos+5]))
				if len(out) > end {
					t.Fatalf("read past the record ending at %d: %d bytes out", end, len(out))
				}
				if len(out) == end {
					pos = end
				}
			} else if len(out)-pos == headerLen && binary.BigEndian.Uint16(in[pos+3:pos+5]) == 0 {
				pos += headerLen
			}
			if err != nil {
				break
			}
		}
		if !bytes.Equal(out, in) {
			t.Fatalf("bytes changed: %x, want %x", out, in)
		}
	})
}
