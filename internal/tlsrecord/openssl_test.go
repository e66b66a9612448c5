package tlsrecord

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/testpeer"
)

// TestOpenSSLClient runs Debian's openssl s_client against a taken-over
// server connection with each TLS 1.3 suite forced, a client
// certificate, data both ways, and a KeyUpdate with update_requested from
// the client (s_client's interactive K command), which the server must
// follow and answer (RFC 8446 §4.6.3).
func TestOpenSSLClient(t *testing.T) {
	openssl := testpeer.Require(t, "openssl")
	dir := t.TempDir()
	cert := testCert(t, "openssl-device")
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}), 0o600)

	for _, suite := range []struct {
		name string
		id   uint16
	}{
		{"TLS_AES_128_GCM_SHA256", tls.TLS_AES_128_GCM_SHA256},
		{"TLS_AES_256_GCM_SHA384", tls.TLS_AES_256_GCM_SHA384},
		{"TLS_CHACHA20_POLY1305_SHA256", tls.TLS_CHACHA20_POLY1305_SHA256},
	} {
		t.Run(suite.name, func(t *testing.T) {
			addr, ch := listen(t, serverConf(t))
			cmd := exec.Command(openssl, "s_client", "-connect", addr, "-tls1_3", "-ciphersuites", suite.name,
				"-cert", certFile, "-key", keyFile)
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			a := next(t, ch)
			if !a.taken {
				t.Fatalf("not taken over: %v", a.kept)
			}
			if a.state.CipherSuite != suite.id {
				t.Fatalf("suite %#04x, want %s", a.state.CipherSuite, suite.name)
			}
			if len(a.state.PeerCertificates) != 1 {
				t.Fatal("no client certificate")
			}
			s := a.conn.(*Conn)
			readSecret := s.in.secret
			// The server echoes lines.
			echoed := make(chan error, 1)
			go func() {
				r := bufio.NewReader(s)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						echoed <- err
						return
					}
					if _, err := s.Write([]byte("echo " + line)); err != nil {
						echoed <- err
						return
					}
				}
			}()
			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			expect := func(want string) {
				t.Helper()
				deadline := time.After(10 * time.Second)
				for {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatalf("s_client ended before %q: %s", want, stderr.String())
						}
						if l == want {
							return
						}
					case <-deadline:
						t.Fatalf("no %q from s_client: %s", want, stderr.String())
					}
				}
			}
			io.WriteString(stdin, "hello before\n")
			expect("echo hello before")
			// s_client takes a whole read of its input as one command:
			// the commands go alone, with a pause after each.
			io.WriteString(stdin, "K\n") // KeyUpdate, update_requested
			time.Sleep(300 * time.Millisecond)
			io.WriteString(stdin, "hello after\n")
			expect("echo hello after")
			io.WriteString(stdin, "k\n") // KeyUpdate, update_not_requested
			time.Sleep(300 * time.Millisecond)
			io.WriteString(stdin, strings.Repeat("x", 20000)+"\n")
			expect("echo " + strings.Repeat("x", 20000))
			stdin.Close() // s_client sends close_notify and ends
			select {
			case err := <-echoed:
				if err != io.EOF {
					t.Fatalf("server read: %v, want EOF after close_notify", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no close_notify")
			}
			// Two KeyUpdates received: the read secret is two
			// generations on (§7.2).
			want := readSecret
			for range 2 {
				n := s.in.s.hashLen
				copy(want[:], expandLabel(s.in.s.hash, want[:n], "traffic upd", nil, n))
			}
			if s.in.secret != want {
				t.Fatal("read secret not two generations on after the client's two KeyUpdates")
			}
			cmd.Wait()
		})
	}
}
