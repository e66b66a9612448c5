// Package server is a PhoneX cluster node: it composes the CA, the store and
// the HTTPS API (enrollment, hardened unlock, contacts) into one process.
package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
	"github.com/phonex/phonex/internal/throttle"
)

// DBFile is the SQLite database inside the data directory.
const DBFile = "phonexd.db"

// Init creates a data directory: configuration, CA, server certificate,
// sealing key and database. It returns the CA.
func Init(ctx context.Context, cfg Config) (*ca.CA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, ConfigFile)); err == nil {
		return nil, fmt.Errorf("init: %s already holds a configuration", cfg.DataDir)
	}
	c, err := ca.Init(cfg.DataDir, cfg.Domain, cfg.Hosts, time.Now())
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if _, err := loadSealer(cfg.DataDir, true); err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		return nil, err
	}
	st.Close()
	os.Chmod(filepath.Join(cfg.DataDir, DBFile), 0o600)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, ConfigFile), cfg.Encode(), 0o600); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return c, nil
}

// Node is a running cluster node.
type Node struct {
	cfg    Config
	st     store.Store
	ca     *ca.CA
	seal   *sealer
	log    *slog.Logger
	now    func() time.Time
	devPol throttle.Policy
	accPol throttle.Policy

	mu       sync.Mutex
	sessions map[string]*pending
	sipLive  string // the SIP listener's address once it runs
}

// sipAddr is where devices reach SIP: the live listener, else the setting.
func (n *Node) sipAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sipLive != "" {
		return n.sipLive
	}
	return n.cfg.SIPAddr
}

// Open loads a node from its data directory.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := ca.Load(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	s, err := loadSealer(cfg.DataDir, false)
	if err != nil {
		return nil, err
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, DBFile))
	if err != nil {
		return nil, err
	}
	return &Node{cfg: cfg, st: st, ca: c, seal: s, log: log, now: time.Now,
		devPol: cfg.DeviceAttempts, accPol: cfg.AccountAttempts,
		sessions: map[string]*pending{}}, nil
}

// Close releases the store.
func (n *Node) Close() error { return n.st.Close() }

// Store gives the admin commands access to the node's state.
func (n *Node) Store() store.Store { return n.st }

// CA is the node's certification authority.
func (n *Node) CA() *ca.CA { return n.ca }

// TLSConfig is the API listener's configuration: TLS 1.3 (with Go's default
// hybrid post-quantum key exchange) and a client certificate requested but
// checked by the handlers, so that a refused certificate gets a specific error.
func (n *Node) TLSConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(n.cfg.DataDir, ca.ServerCertFile), filepath.Join(n.cfg.DataDir, ca.ServerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	// The chain carries the CA too, so a device that knows only the CA's
	// fingerprint can find and pin it at enrollment.
	cert.Certificate = append(cert.Certificate, n.ca.Cert.Raw)
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequestClientCert,
	}, nil
}

// Serve runs the API on ln until ctx ends.
func (n *Node) Serve(ctx context.Context, ln net.Listener) error {
	tc, err := n.TLSConfig()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           n.Handler(),
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       5 * time.Minute,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		return nil
	case err := <-errc:
		return err
	}
}

// Run opens the node in cfg.DataDir and serves until ctx ends. ready is
// called with one line per listener once it accepts connections.
func Run(ctx context.Context, cfg Config, log *slog.Logger, ready func(string)) error {
	n, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.Close()
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("api listener: %w", err)
	}
	sln, err := net.Listen("tcp", cfg.SIPAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("sip listener: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- n.Serve(ctx, ln) }()
	go func() { errc <- n.ServeSIP(ctx, sln) }()
	if ready != nil {
		ready(fmt.Sprintf("api: https://%s (mutual TLS, CA %s)", ln.Addr(), ca.Fingerprint(n.ca.Cert)))
		ready(fmt.Sprintf("sip: sips:%s (SIP over TLS; devices by certificate, standard phones by digest)", sln.Addr()))
	}
	log.Info("node started", "domain", cfg.Domain, "api", ln.Addr().String(), "sip", sln.Addr().String())
	go n.expireSessions(ctx)
	err = <-errc
	cancel()
	<-errc
	return err
}

// pending is a two-step exchange between its begin and finish calls.
type pending struct {
	kind       string // enroll, login, passwd
	expires    time.Time
	accountID  int64
	account    string
	device     string
	deviceID   int64
	codeHash   []byte
	challenge  []byte
	accountKey kdf.OPRFKey
	deviceKey  kdf.OPRFKey
}

const sessionTTL = 5 * time.Minute

func (n *Node) newSession(p *pending) string {
	b := make([]byte, 18)
	rand.Read(b)
	id := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
	p.expires = n.now().Add(sessionTTL)
	n.mu.Lock()
	n.sessions[id] = p
	n.mu.Unlock()
	return id
}

// takeSession removes and returns a session: each is used at most once.
func (n *Node) takeSession(id, kind string) (*pending, error) {
	n.mu.Lock()
	p, ok := n.sessions[id]
	delete(n.sessions, id)
	n.mu.Unlock()
	if !ok || p.kind != kind || n.now().After(p.expires) {
		return nil, &api.Error{Status: http.StatusBadRequest, Code: api.CodeSessionExpired, Message: kind + " session unknown or expired; start again"}
	}
	return p, nil
}

func (n *Node) expireSessions(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := n.now()
			n.mu.Lock()
			for id, p := range n.sessions {
				if now.After(p.expires) {
					delete(n.sessions, id)
				}
			}
			n.mu.Unlock()
		}
	}
}

// CodeHash is how an activation code is stored: only its hash, so a copy of
// the database cannot enroll anyone. Codes have 80 random bits, so a plain
// hash suffices.
func CodeHash(code string) []byte {
	c := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(code))
	h := sha256.Sum256([]byte("phonex/v1/activation\x00" + c))
	return h[:]
}

// NewCode makes an activation code: 16 base32 characters in groups of four.
func NewCode() string {
	b := make([]byte, 10)
	rand.Read(b)
	s := base32.StdEncoding.EncodeToString(b)
	return s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
}

func errorf(status int, code, format string, a ...any) *api.Error {
	return &api.Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

var errInternal = errors.New("internal error")
