package tlsrecord

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
)

// BenchmarkEcho: a 600-byte SIP message from a crypto/tls client to the
// server and back, over loopback, with the server side carried by
// crypto/tls and by this package. The client is crypto/tls in both, so
// the difference is the server's record layer.
func BenchmarkEcho(b *testing.B) {
	for _, takeover := range []bool{false, true} {
		name := "crypto-tls"
		if takeover {
			name = "tlsrecord"
		}
		b.Run(name, func(b *testing.B) {
			var c *tls.Conn
			var s net.Conn
			if takeover {
				addr, ch := listen(b, serverConf(b))
				c = dial(b, addr, clientConf(b))
				c.Write([]byte("x"))
				a := next(b, ch)
				if !a.taken {
					b.Fatal(a.kept)
				}
				s = a.conn
			} else {
				addr, ch := listenKept(b, serverConf(b))
				c = dial(b, addr, clientConf(b))
				c.Write([]byte("x"))
				s = <-ch
			}
			io.ReadFull(s, make([]byte, 1))
			msg := pattern(600, 5)
			buf := make([]byte, len(msg))
			b.SetBytes(int64(2 * len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(s, buf); err != nil {
					b.Fatal(err)
				}
				if _, err := s.Write(buf); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// listenKept accepts crypto/tls server connections that stay with it.
func listenKept(b *testing.B, conf *tls.Config) (string, <-chan net.Conn) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			b.Cleanup(func() { c.Close() })
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

// BenchmarkAEADSetup is what making the AEAD state per record costs
// (instead of keeping it for the connection's life, 0.9 KiB each way for
// AES-GCM).
func BenchmarkAEADSetup(b *testing.B) {
	for _, id := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256} {
		s, _ := suiteByID(id)
		var h half
		h.set(s, make([]byte, s.hashLen))
		b.Run(tls.CipherSuiteName(id), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := h.aead(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
