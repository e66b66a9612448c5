// Command sipidle measures a running phonexd's memory per idle
// authenticated SIP connection: after warm PhoneX device connections (TLS
// with the device certificate, one REGISTER answered 200 each), n more, and
// the growth of the server's RSS over those n divided by n.
// bench/sipidle.sh starts the node and runs it.
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phonex/phonex/bench/internal/nodeprobe"
	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/server"
)

func main() {
	apiAddr := flag.String("server", "", "API address of the running phonexd")
	sipAddr := flag.String("sip", "", "its SIP address")
	data := flag.String("data", "", "its data directory")
	pid := flag.Int("pid", 0, "its process id")
	n := flag.Int("idle", 1000, "idle connections measured")
	warm := flag.Int("warm", 1000, "idle connections opened before the measurement starts")
	flag.Parse()
	if err := run(*apiAddr, *sipAddr, *data, *pid, *warm, *n); err != nil {
		fmt.Fprintln(os.Stderr, "sipidle:", err)
		os.Exit(1)
	}
}

func run(apiAddr, sipAddr, data string, pid, warm, n int) error {
	ctx := context.Background()
	cfg, err := server.LoadConfig(data)
	if err != nil {
		return err
	}
	adm, err := server.OpenAdmin(ctx, cfg)
	if err != nil {
		return err
	}
	defer adm.Close()
	caCert, err := ca.ReadCert(filepath.Join(data, ca.CACertFile))
	if err != nil {
		return err
	}
	user := "idle@" + cfg.Domain
	act, err := adm.AddUser(ctx, user, 0)
	if err != nil {
		return err
	}
	cert, err := enroll(apiAddr, caCert, user, act.Code)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	tc := &tls.Config{RootCAs: pool, ServerName: sipAddr[:strings.LastIndex(sipAddr, ":")], Certificates: []tls.Certificate{cert}}

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	open := func(from, to int) error {
		for i := from; i < to; i++ {
			// Spread over loopback addresses: the node caps connections per source.
			src := &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/25000), byte(1+(i/100)%250))}
			c, err := tls.DialWithDialer(&net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}, "tcp", sipAddr, tc)
			if err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			conns = append(conns, c)
			if err := register(c, user, i); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
		}
		return nil
	}
	// The node's heap keeps pages freed after its start (and grows its
	// goal with what it holds), so the first connections can fit in memory
	// the process already has. Warm connections are opened first and the
	// growth is measured past them: the marginal cost of one more.
	if err := open(0, warm); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	before, err := nodeprobe.RSS(pid)
	if err != nil {
		return err
	}
	if err := open(warm, warm+n); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	after, err := nodeprobe.RSS(pid)
	if err != nil {
		return err
	}
	fmt.Printf("| server memory per idle authenticated SIP connection (RSS growth over %d registered device connections past the first %d) | %.1f KiB |\n", n, warm, float64(after-before)/float64(n)/1024)
	return nil
}

func register(c net.Conn, user string, i int) error {
	u, dom, _ := strings.Cut(user, "@")
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bKidle%d\r\nFrom: <sip:%s@%s>;tag=i%d\r\nTo: <sip:%s@%s>\r\n"+
		"Call-ID: idle-%d\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s;transport=tls>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
		dom, c.LocalAddr(), i, u, dom, i, u, dom, i, u, dom)
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "SIP/2.0 200") {
		return fmt.Errorf("REGISTER: %s", strings.TrimSpace(line))
	}
	return nil
}

// enroll makes a device over the API without the password KDF (random
// purpose secrets): only its certificate and key matter here.
func enroll(addr string, caCert *x509.Certificate, user, code string) (tls.Certificate, error) {
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: addr[:strings.LastIndex(addr, ":")]}}, Timeout: 30 * time.Second}
	in := make([]byte, 32)
	rand.Read(in)
	ab, _ := kdf.Blind(in)
	db, _ := kdf.Blind(in)
	var ev api.OPRFEvals
	if err := nodeprobe.PostJSON(hc, "https://"+addr+api.PathEnrollBegin, api.EnrollBegin{User: user, Code: code, Device: "d", AccountBlind: ab.Message(), DeviceBlind: db.Message()}, &ev); err != nil {
		return tls.Certificate{}, err
	}
	k, err := keys.Generate(keys.SuiteEC, 0)
	if err != nil {
		return tls.Certificate{}, err
	}
	a, _ := ident.ParseAccount(user)
	dev := ident.Device{Account: a, Name: "d"}
	csr, _ := k.CSR(dev)
	pub, sig, _ := k.KexProof(dev)
	authPub, _, _ := ed25519.GenerateKey(rand.Reader)
	salts := kdf.NewSalts()
	var certs api.Certs
	if err := nodeprobe.PostJSON(hc, "https://"+addr+api.PathEnrollFinish, api.EnrollFinish{Session: ev.Session, CSR: csr, KexPub: pub, KexSig: sig, AuthPub: authPub,
		KDF: kdf.DefaultParams, Salts: kdf.Salts{Scrypt: salts.Scrypt, Auth: salts.Auth}}, &certs); err != nil {
		return tls.Certificate{}, err
	}
	cert := tls.Certificate{Certificate: [][]byte{certs.Cert}, PrivateKey: k.Sign}
	// The device becomes active once it confirms with its new certificate.
	mtls := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: addr[:strings.LastIndex(addr, ":")],
		Certificates: []tls.Certificate{cert}}}, Timeout: 30 * time.Second}
	var done map[string]any
	if err := nodeprobe.PostJSON(mtls, "https://"+addr+api.PathEnrollConfirm, api.Confirm{Session: ev.Session}, &done); err != nil {
		return tls.Certificate{}, err
	}
	return cert, nil
}
