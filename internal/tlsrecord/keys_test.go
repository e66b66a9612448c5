package tlsrecord

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Vectors of RFC 8448 §3 (Simple 1-RTT Handshake, TLS_AES_128_GCM_SHA256).
const (
	rfcClientSecret = "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5"
	rfcServerSecret = "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43"
	// {client} send application_data record (seq 0): payload 00..31.
	rfcClientRecord = `17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea
		42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62
		92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4`
	// {server} send application_data record (seq 1, after the
	// NewSessionTicket at seq 0): the same payload.
	rfcServerRecord = `17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc
		32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5
		f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d`
	// {client} send alert record (seq 1): close_notify.
	rfcClientAlert = "17 03 03 00 13 c9 87 27 60 65 56 66 b7 4d 7f f1 15 3e fd 6d b6 d0 b0 e3"
)

func rfcPayload() []byte {
	p := make([]byte, 50)
	for i := range p {
		p[i] = byte(i)
	}
	return p
}

func TestKeyDerivationRFC8448(t *testing.T) {
	s, err := suiteByID(tls.TLS_AES_128_GCM_SHA256)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, secret, key, iv string
	}{
		{"client", rfcClientSecret, "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51", "5b 78 92 3d ee 08 57 90 33 e5 23 d9"},
		{"server", rfcServerSecret, "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56", "cf 78 2b 88 dd 83 54 9a ad f1 e9 84"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h half
			h.set(s, unhex(t, tc.secret))
			if got, want := h.key[:s.keyLen], unhex(t, tc.key); !bytes.Equal(got, want) {
				t.Errorf("key %x, want %x", got, want)
			}
			if got, want := h.iv[:], unhex(t, tc.iv); !bytes.Equal(got, want) {
				t.Errorf("iv %x, want %x", got, want)
			}
		})
	}
}

// bufConn is a net.Conn over in-memory bytes: reads come from r, writes
// go to w. It stands for the socket in tests of single records.
type bufConn struct {
	r io.Reader
	w bytes.Buffer
}

func (c *bufConn) Read(b []byte) (int, error)         { return c.r.Read(b) }
func (c *bufConn) Write(b []byte) (int, error)        { return c.w.Write(b) }
func (c *bufConn) Close() error                       { return nil }
func (c *bufConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *bufConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *bufConn) SetDeadline(t time.Time) error      { return nil }
func (c *bufConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *bufConn) SetWriteDeadline(t time.Time) error { return nil }

// TestRecordProtectionRFC8448 protects and opens the application data
// records of RFC 8448 §3 with the traffic secrets given there.
func TestRecordProtectionRFC8448(t *testing.T) {
	client, server := unhex(t, rfcClientSecret), unhex(t, rfcServerSecret)

	t.Run("client writes", func(t *testing.T) {
		raw := &bufConn{r: bytes.NewReader(nil)}
		c, err := New(raw, tls.TLS_AES_128_GCM_SHA256, server, client)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(rfcPayload()); err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, rfcClientRecord); !bytes.Equal(raw.w.Bytes(), want) {
			t.Errorf("record\n%x\nwant\n%x", raw.w.Bytes(), want)
		}
	})
	t.Run("server writes at seq 1", func(t *testing.T) {
		raw := &bufConn{r: bytes.NewReader(nil)}
		c, err := New(raw, tls.TLS_AES_128_GCM_SHA256, client, server)
		if err != nil {
			t.Fatal(err)
		}
		c.out.seq = 1
		if _, err := c.Write(rfcPayload()); err != nil {
			t.Fatal(err)
		}
		if want := unhex(t, rfcServerRecord); !bytes.Equal(raw.w.Bytes(), want) {
			t.Errorf("record\n%x\nwant\n%x", raw.w.Bytes(), want)
		}
	})
	t.Run("server reads", func(t *testing.T) {
		in := append(unhex(t, rfcClientRecord), unhex(t, rfcClientAlert)...)
		c, err := New(&bufConn{r: bytes.NewReader(in)}, tls.TLS_AES_128_GCM_SHA256, client, server)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, rfcPayload()) {
			t.Errorf("read %x, want %x", got, rfcPayload())
		}
		// The close_notify ended the stream: io.ReadAll saw io.EOF.
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("after close_notify: %v, want EOF", err)
		}
	})
	t.Run("key update", func(t *testing.T) {
		// §7.2: the next generation, then its key and IV (§7.3); the
		// RFC gives no vector, so check it against the definitions.
		s, _ := suiteByID(tls.TLS_AES_128_GCM_SHA256)
		var h half
		h.set(s, client)
		h.seq = 9
		h.update()
		next := expandLabel(s.hash, client, "traffic upd", nil, 32)
		if !bytes.Equal(h.secret[:32], next) || h.seq != 0 {
			t.Errorf("next secret %x seq %d, want %x 0", h.secret[:32], h.seq, next)
		}
		if want := expandLabel(s.hash, next, "key", nil, 16); !bytes.Equal(h.key[:16], want) {
			t.Errorf("next key %x, want %x", h.key[:16], want)
		}
	})
}
