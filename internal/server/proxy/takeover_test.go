package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/store/sqlite"
	"github.com/phonex/phonex/internal/tlsrecord"
)

// TestTakeover: a TLS 1.3 device connection is carried by tlsrecord
// after its handshake, a TLS 1.2 one (some standard phones) stays with
// crypto/tls, and KeepTLS leaves every connection with crypto/tls; in
// each case a REGISTER and its 200 go through and the device certificate
// is known to the proxy.
func TestTakeover(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keepTLS bool
		version uint16
		taken   bool
	}{
		{"TLS 1.3", false, tls.VersionTLS13, true},
		{"TLS 1.2", false, tls.VersionTLS12, false},
		{"TLS 1.3 with KeepTLS", true, tls.VersionTLS13, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			p, err := New(Config{Domain: "example.org", Store: st, Auth: oneDevice{}, NonceKey: []byte("k"), KeepTLS: tc.keepTLS,
				TLS: &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}, ClientAuth: tls.RequestClientCert,
					SessionTicketsDisabled: true, MinVersion: tls.VersionTLS12}})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			go p.Serve(ctx, ln)
			c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{selfSigned(t)},
				MinVersion: tc.version, MaxVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			r := bufio.NewReader(c)
			register(t, c, r, 1, 60)
			<-p.serving
			p.ln.mu.Lock()
			pc := p.ln.conns[c.LocalAddr().String()]
			p.ln.mu.Unlock()
			if pc == nil || pc.cert == nil {
				t.Fatal("connection or its certificate unknown to the proxy")
			}
			pc.mu.Lock()
			_, taken := pc.tc.(*tlsrecord.Conn)
			pc.mu.Unlock()
			if taken != tc.taken {
				t.Fatalf("taken over: %v, want %v", taken, tc.taken)
			}
			// A second message on the same connection, and a keep-alive
			// ping answered.
			register(t, c, r, 2, 60)
			c.Write([]byte("\r\n\r\n"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			pong := make([]byte, 2)
			if _, err := r.Read(pong); err != nil || string(pong) != "\r\n" {
				t.Fatalf("pong %q, %v", pong, err)
			}
		})
	}
}
