// Package server is a PhoneX cluster node: it composes the CA, the store and
// the HTTPS API (enrollment, hardened unlock, contacts) into one process.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/health"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/metrics"
	"github.com/phonex/phonex/internal/server/directory"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/server/files"
	"github.com/phonex/phonex/internal/server/operator"
	"github.com/phonex/phonex/internal/server/presence"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/storeopen"
	"github.com/phonex/phonex/internal/throttle"
)

// DBFile is the SQLite database inside the data directory.
const DBFile = storeopen.SQLiteFile

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
	// The store first: one holding another cluster's accounts is
	// refused before any key is made.
	st, err := storeopen.Open(ctx, cfg.StoreSpec())
	if err != nil {
		return nil, err
	}
	err = checkFreshStore(ctx, st)
	st.Close()
	if err != nil {
		return nil, err
	}
	c, err := ca.Init(cfg.DataDir, cfg.Domain, cfg.Hosts, time.Now())
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if _, err := loadSealer(cfg.DataDir, true); err != nil {
		return nil, err
	}
	if _, err := InitDNSKeys(cfg); err != nil {
		return nil, fmt.Errorf("init: dns keys: %w", err)
	}
	if cfg.Store == "" {
		os.Chmod(filepath.Join(cfg.DataDir, DBFile), 0o600)
	}
	if err := os.WriteFile(filepath.Join(cfg.DataDir, ConfigFile), cfg.Encode(), 0o600); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	return c, nil
}

// Node is a running cluster node.
type Node struct {
	cfg      Config
	st       store.Store
	ca       *ca.CA
	seal     *sealer
	log      *slog.Logger
	now      func() time.Time
	devPol   throttle.Policy
	accPol   throttle.Policy
	loginPol throttle.Policy
	powKey   []byte // MACs human-check tokens; per process, so a restart voids open ones
	kdfMin   kdf.Params

	// Bounds of the exchanges in progress between a begin and its finish
	// (or a finish and its confirm): in total, and per account.
	maxSessions, maxAccountSessions int

	fdLimit uint64 // soft limit on open files, 0 if unknown

	mu       sync.Mutex
	sessions map[string]*pending
	sipLive  string            // the SIP listener's address once it runs
	pres     *presence.Service // the SIP proxy's presence agent once it runs

	handouts handoutLimiter // one-time prekeys handed out (keys.go)

	relayOut *relayIssuer // relays GET /v1/turn hands out (turn.go); nil: none

	files *files.Service // files.go

	op           *operator.Service // policies, groups, audit (policy.go)
	policyWarned atomic.Int64      // unix ns of the last failed policy lookup logged

	dir    dirZone            // the directory zone (dns.go)
	dirSvc *directory.Service // the directory's private API (directory.go)

	metrics *metrics.Metrics // ops.go
	checks  health.Checks

	fedOnce sync.Once
	fed     *federation.Service // federation.go
	fedKeys bundleCache         // federation_cache.go

	live liveState // panel.go

	link *clusterLink // the bus, when in a cluster (cluster.go)
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
	st, err := storeopen.Open(ctx, cfg.StoreSpec())
	if err != nil {
		return nil, err
	}
	powKey := make([]byte, 32)
	rand.Read(powKey)
	n := &Node{cfg: cfg, st: st, ca: c, seal: s, log: log, now: time.Now,
		devPol: cfg.DeviceAttempts, accPol: cfg.AccountAttempts, loginPol: cfg.LoginAttempts,
		powKey: powKey, kdfMin: kdf.Params{LogN: cfg.KDFMinLogN, R: kdf.MinParams.R, P: kdf.MinParams.P},
		maxSessions: maxSessions, maxAccountSessions: maxAccountSessions,
		sessions: map[string]*pending{}}
	n.op = operator.New(st, OperatorSettings(cfg), operator.WithLogger(log))
	n.initOps()
	if err := n.openFiles(); err != nil {
		st.Close()
		return nil, err
	}
	n.openDirectory()
	return n, nil
}

// Close releases the store.
func (n *Node) Close() error { n.leaveBus(); return n.st.Close() }

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
	return run(ctx, cfg, log, ready, nil)
}

func run(ctx context.Context, cfg Config, log *slog.Logger, ready func(string), hooks []Hook) error {
	n, err := Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer n.Close()
	// A flood of connections must meet the SIP listener's caps, not the
	// process's file descriptor limit.
	if soft, hard, err := raiseFileLimit(); err != nil && soft == 0 {
		log.Warn("file descriptor limit unknown", "err", err)
	} else {
		n.fdLimit = soft
		if err != nil {
			log.Warn("file descriptor limit not raised", "soft", soft, "hard", hard, "err", err)
		} else {
			log.Info("file descriptor limit", "soft", soft, "hard", hard)
		}
	}
	dz, err := n.openDNS(ctx)
	if err != nil {
		return err
	}
	defer dz.close()
	ln, err := net.Listen("tcp", cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("api listener: %w", err)
	}
	sln, err := net.Listen("tcp", cfg.SIPAddr)
	if err != nil {
		ln.Close()
		return fmt.Errorf("sip listener: %w", err)
	}
	pln, err := listenPhones(cfg)
	if err != nil {
		ln.Close()
		sln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opsLine := n.startOpsLenient(ctx)
	errc := make(chan error, 2+len(hooks))
	go func() { errc <- n.Serve(ctx, ln) }()
	go func() { errc <- n.ServeSIPPhones(ctx, sln, pln) }()
	defer recordListening(cfg.DataDir, ln, sln, pln, log)()
	relayLine := n.startRelayLenient(ctx)
	go dz.serve(ctx, n)
	if ready != nil {
		ready(fmt.Sprintf("api: https://%s (mutual TLS, CA %s)", ln.Addr(), ca.Fingerprint(n.ca.Cert)))
		if pln != nil {
			ready(fmt.Sprintf("phones: sip:%s;transport=tls (SIP over TLS for standard phones: digest login, no client certificate)", pln.Addr()))
		}
		ready(fmt.Sprintf("sip: sips:%s (SIP over TLS; devices by certificate, standard phones by digest)", sln.Addr()))
		if relayLine != "" {
			ready(relayLine)
		}
		if dz != nil {
			ready(dz.line())
		}
		ready(opsLine)
	}
	log.Info("node started", "domain", cfg.Domain, "api", ln.Addr().String(), "sip", sln.Addr().String())
	for _, h := range hooks {
		go func() { errc <- h(ctx, n, ready) }()
	}
	go n.expireSessions(ctx)
	go n.sweepFiles(ctx)
	go n.sweepDirectory(ctx)
	err = <-errc
	cancel()
	for range 1 + len(hooks) {
		<-errc
	}
	return err
}

// pending is a two-step exchange between its begin and finish calls, or an
// issued certificate waiting for its device to confirm.
type pending struct {
	kind       string // enroll, login, passwd, enroll-confirm, login-confirm
	expires    time.Time
	accountID  int64
	account    string
	device     string
	deviceID   int64
	codeHash   []byte
	challenge  []byte
	accountKey kdf.OPRFKey
	deviceKey  kdf.OPRFKey

	// Confirm steps: what the finish call prepared, stored only when the
	// device proves (by mutual TLS with it) that it accepted the certificate.
	claim   string // the enrollment session that holds the code's claim
	issued  *x509.Certificate
	secrets store.AccountSecrets
	dev     store.Device
}

const sessionTTL = 5 * time.Minute

// Default bounds of the exchanges in progress. An honest device has at most
// one; the per-account bound stops one account's name from filling the
// table, the total bounds the node's memory.
const (
	maxSessions        = 4096
	maxAccountSessions = 4
)

func newSessionID() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
}

// roomLocked drops expired sessions and refuses a new one for account when
// the bounds are reached. n.mu must be held.
func (n *Node) roomLocked(account string, now time.Time) error {
	perAccount := 0
	for k, q := range n.sessions {
		if now.After(q.expires) {
			delete(n.sessions, k)
			continue
		}
		if q.account == account {
			perAccount++
		}
	}
	if len(n.sessions) >= n.maxSessions || perAccount >= n.maxAccountSessions {
		return &api.Error{Status: http.StatusServiceUnavailable, Code: api.CodeBusy, RetryAfter: sessionTTL.Seconds(),
			Message: "too many enrollments or logins in progress for " + account + "; try again in a few minutes"}
	}
	return nil
}

// sessionRoom reports whether an exchange for account could start now,
// so a handler can refuse before it spends work or counts an attempt.
func (n *Node) sessionRoom(account string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.roomLocked(account, n.now())
}

// newSession stores p under a fresh id unless the bounds are reached.
func (n *Node) newSession(p *pending) (string, error) {
	id := newSessionID()
	return id, n.putSession(id, p)
}

// putSession stores p under id unless the bounds are reached.
func (n *Node) putSession(id string, p *pending) error {
	now := n.now()
	p.expires = now.Add(sessionTTL)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.roomLocked(p.account, now); err != nil {
		return err
	}
	n.sessions[id] = p
	return nil
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
func CodeHash(code string) []byte { return operator.CodeHash(code) }

// NewCode makes an activation code: 16 base32 characters in groups of four.
func NewCode() string { return operator.NewCode() }

func errorf(status int, code, format string, a ...any) *api.Error {
	return &api.Error{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

var errInternal = errors.New("internal error")
