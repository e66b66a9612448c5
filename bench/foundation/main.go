// Command foundation measures a running phonexd: enrollment and unlock
// latency as a user sees them, server enrollments per second, mutual-TLS
// handshakes per second, and memory per idle authenticated connection.
// bench/foundation.sh starts the node and runs it.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonex/phonex/bench/internal/nodeprobe"
	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/server"
)

func main() {
	addr := flag.String("server", "", "API address of the running phonexd")
	data := flag.String("data", "", "its data directory")
	pid := flag.Int("pid", 0, "its process id (for memory)")
	dur := flag.Duration("duration", 5*time.Second, "length of each throughput run")
	workers := flag.Int("workers", 8, "concurrent clients")
	idle := flag.Int("idle", 1000, "idle connections for the memory figure")
	flag.Parse()
	if err := run(*addr, *data, *pid, *dur, *workers, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(addr, data string, pid int, dur time.Duration, workers, idle int) error {
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
	caFile := filepath.Join(data, ca.CACertFile)
	caCert, err := ca.ReadCert(caFile)
	if err != nil {
		return err
	}
	fmt.Printf("| measure | value |\n|---|---|\n")

	// 1. What a user waits for, with the default KDF cost.
	var enrollT, unlockT []time.Duration
	var dir string
	for i := 0; i < 5; i++ {
		user := fmt.Sprintf("lat%d@%s", i, cfg.Domain)
		act, err := adm.AddUser(ctx, user, 0)
		if err != nil {
			return err
		}
		dir, _ = os.MkdirTemp("", "bench-profile-")
		start := time.Now()
		p, err := client.Enroll(ctx, client.EnrollRequest{Dir: dir, User: user, Device: "d", Server: addr, CAFile: caFile, Code: act.Code, Password: []byte("bench password")}, nil)
		if err != nil {
			return fmt.Errorf("enroll: %w", err)
		}
		enrollT = append(enrollT, time.Since(start))
		p.Close()
		start = time.Now()
		p, err = client.Open(ctx, dir, []byte("bench password"), nil)
		if err != nil {
			return fmt.Errorf("unlock: %w", err)
		}
		unlockT = append(unlockT, time.Since(start))
		if i < 4 {
			p.Close()
			os.RemoveAll(dir)
			continue
		}
		defer p.Close()
		defer os.RemoveAll(dir)
		fmt.Printf("| enroll, default KDF, ec suite (median of 5) | %s |\n", median(enrollT))
		fmt.Printf("| unlock, default KDF (median of 5) | %s |\n", median(unlockT))
		return throughput(ctx, adm, cfg, addr, caCert, p, pid, dur, workers, idle)
	}
	return nil
}

func throughput(ctx context.Context, adm *server.Admin, cfg server.Config, addr string, caCert *x509.Certificate, p *client.Profile, pid int, dur time.Duration, workers, idle int) error {
	// 2. Server enrollments per second. Clients skip scrypt (random purpose
	// secrets) so the figure is the server's: two OPRF evaluations, CSR
	// checks, two certificates, one transaction.
	const pool = 4000
	codes := make(chan [2]string, pool)
	for i := 0; i < pool; i++ {
		user := fmt.Sprintf("e%d-%d@%s", time.Now().UnixNano(), i, cfg.Domain)
		act, err := adm.AddUser(ctx, user, 0)
		if err != nil {
			return err
		}
		codes <- [2]string{user, act.Code}
	}
	close(codes)
	var n atomic.Int64
	var errs atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := httpClient(addr, caCert, nil)
			for uc := range codes {
				if time.Now().After(deadline) {
					return
				}
				if err := rawEnroll(hc, addr, uc[0], uc[1]); err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "enroll:", err)
					}
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("| server enrollments per second (%d clients, client KDF excluded) | %.0f |\n", workers, float64(n.Load())/time.Since(start).Seconds())

	// 3. Mutual-TLS handshakes per second: a new TLS 1.3 connection with the
	// device certificate and one authenticated request each.
	cert := tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Keys.Sign}
	n.Store(0)
	deadline = time.Now().Add(dur)
	start = time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				hc := httpClient(addr, caCert, &cert)
				hc.Transport.(*http.Transport).DisableKeepAlives = true
				if err := get(hc, addr, api.PathMe); err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "handshake:", err)
					}
					continue
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("| mutual-TLS handshakes + authenticated request per second (%d clients) | %.0f |\n", workers, float64(n.Load())/time.Since(start).Seconds())

	// 4. Memory per idle authenticated connection, from the server's RSS.
	if pid > 0 {
		time.Sleep(time.Second)
		before, err := nodeprobe.RSS(pid)
		if err != nil {
			return err
		}
		var conns []*http.Client
		for i := 0; i < idle; i++ {
			hc := httpClient(addr, caCert, &cert)
			if err := get(hc, addr, api.PathMe); err != nil {
				return fmt.Errorf("idle connection %d: %w", i, err)
			}
			conns = append(conns, hc)
		}
		time.Sleep(2 * time.Second)
		after, err := nodeprobe.RSS(pid)
		if err != nil {
			return err
		}
		fmt.Printf("| server memory per idle authenticated connection (%d connections, RSS) | %.1f KiB |\n", idle, float64(after-before)/float64(idle)/1024)
		for _, hc := range conns {
			hc.CloseIdleConnections()
		}
	}
	if e := errs.Load(); e > 0 {
		fmt.Printf("| failed operations | %d |\n", e)
	}
	return nil
}

func httpClient(addr string, caCert *x509.Certificate, cert *tls.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	host := addr[:strings.LastIndex(addr, ":")]
	tc := &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS13}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc, MaxIdleConnsPerHost: 1}, Timeout: 30 * time.Second}
}

func get(hc *http.Client, addr, path string) error {
	res, err := hc.Get("https://" + addr + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("%s: %s", path, res.Status)
	}
	return nil
}

func post(hc *http.Client, addr, path string, req, resp any) error {
	return nodeprobe.PostJSON(hc, "https://"+addr+path, req, resp)
}

func rawEnroll(hc *http.Client, addr, user, code string) error {
	in := make([]byte, 32)
	rand.Read(in)
	ab, _ := kdf.Blind(in)
	db, _ := kdf.Blind(in)
	var ev api.OPRFEvals
	if err := post(hc, addr, api.PathEnrollBegin, api.EnrollBegin{User: user, Code: code, Device: "d", AccountBlind: ab.Message(), DeviceBlind: db.Message()}, &ev); err != nil {
		return err
	}
	k, _ := keys.Generate(keys.SuiteEC, 0)
	a, _ := ident.ParseAccount(user)
	dev := ident.Device{Account: a, Name: "d"}
	csr, _ := k.CSR(dev)
	pub, sig, _ := k.KexProof(dev)
	authPub, _, _ := ed25519.GenerateKey(rand.Reader)
	salts := kdf.NewSalts()
	var certs api.Certs
	return post(hc, addr, api.PathEnrollFinish, api.EnrollFinish{Session: ev.Session, CSR: csr, KexPub: pub, KexSig: sig, AuthPub: authPub,
		KDF: kdf.DefaultParams, Salts: kdf.Salts{Scrypt: salts.Scrypt, Auth: salts.Auth}}, &certs)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}
