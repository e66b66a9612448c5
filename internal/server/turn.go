package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/server/relay"
)

// relayIssuer hands out credentials for the relays a node names: its own
// and those of relay_urls.
type relayIssuer struct {
	secret     []byte
	ttl        time.Duration
	turn, stun []string
}

func (n *Node) setRelayIssuer(r *relayIssuer) {
	n.mu.Lock()
	n.relayOut = r
	n.mu.Unlock()
}

// turnCredentials is GET /v1/turn: credentials under the caller's account's
// pseudonym, so the relay's quotas count all of an account's devices
// together without the relay learning the account's name.
func (n *Node) turnCredentials(_ context.Context, _ *http.Request, c *caller) (any, error) {
	n.mu.Lock()
	r := n.relayOut
	n.mu.Unlock()
	if r == nil {
		return nil, errorf(http.StatusServiceUnavailable, api.CodeRelayUnavailable, "this cluster runs no STUN/TURN relay; calls can use direct paths only")
	}
	cr := relay.Issue(r.secret, relay.Pseudonym(r.secret, c.id.Account.String()), r.ttl, n.now())
	return api.TURNCredentials{URIs: r.turn, STUN: r.stun, Username: cr.Username, Password: cr.Password,
		TTL: int(r.ttl / time.Second), Expires: cr.Expires.UTC()}, nil
}

// externalURLs splits relay_urls into TURN and STUN URIs.
func externalURLs(urls []string) (turnURLs, stunURLs []string) {
	for _, u := range urls {
		if len(u) > 5 && u[:5] == "stun:" {
			stunURLs = append(stunURLs, u)
		} else {
			turnURLs = append(turnURLs, u)
		}
	}
	return turnURLs, stunURLs
}

// ServeRelay starts the node's STUN/TURN relay as configured (relay_enabled)
// and makes GET /v1/turn hand out credentials for it and for relay_urls. It
// returns the listener line, or "" when the node names no relay. The relay
// stops when ctx ends.
func (n *Node) ServeRelay(ctx context.Context) (string, error) {
	rc := n.cfg.Relay
	if !rc.Enabled && len(rc.URLs) == 0 {
		return "", nil
	}
	secret, err := relay.EnsureSecret(secretPath(n.cfg.DataDir, rc.SecretFile))
	if err != nil {
		return "", err
	}
	is := &relayIssuer{secret: secret, ttl: rc.CredentialTTL}
	is.turn, is.stun = externalURLs(rc.URLs)
	line := "relay: " + fmt.Sprint(len(rc.URLs)) + " external URIs handed out (relay_urls); no relay in this process"
	if rc.Enabled {
		s, err := StartRelay(n.cfg, secret, n.log)
		if err != nil {
			return "", err
		}
		go func() { <-ctx.Done(); s.Close() }()
		n.relayMetrics(s)
		n.live.setRelay(s)
		own, ownSTUN := s.URLs(relayHost(n.cfg, s))
		is.turn, is.stun = slices.Concat(own, is.turn), slices.Concat(ownSTUN, is.stun)
		line = s.Describe()
	}
	n.setRelayIssuer(is)
	return line, nil
}

// startRelayLenient runs ServeRelay for phonexd serve: a relay that cannot
// start (its port taken) is reported and the node runs without it, since
// calls can still take direct paths.
func (n *Node) startRelayLenient(ctx context.Context) string {
	line, err := n.ServeRelay(ctx)
	if err != nil {
		n.log.Error("relay not started; calls get no relay candidates", "err", err)
		return "relay: not running (" + err.Error() + ")"
	}
	return line
}

func secretPath(dir, file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(dir, file)
}

// relayHost is the host put in the URIs handed out: the external address,
// else the listener's, else the first name of the server certificate.
func relayHost(cfg Config, s *relay.Server) string {
	if cfg.Relay.ExternalIP != "" {
		return cfg.Relay.ExternalIP
	}
	for _, a := range []net.Addr{s.UDPAddr(), s.TCPAddr(), s.TLSAddr()} {
		if a == nil {
			continue
		}
		h, _, _ := net.SplitHostPort(a.String())
		if p := net.ParseIP(h); p != nil && !p.IsUnspecified() {
			return h
		}
	}
	if len(cfg.Hosts) > 0 {
		return cfg.Hosts[0]
	}
	return "localhost"
}

// StartRelay starts a relay from cfg's relay section with the shared secret:
// the relay of phonexd serve, and all of phonexd relay.
func StartRelay(cfg Config, secret []byte, log *slog.Logger) (*relay.Server, error) {
	rc := cfg.Relay
	c := relay.Config{Realm: cfg.Domain, UDPAddr: rc.Addr, TCPAddr: rc.Addr, TLSAddr: rc.TLSAddr,
		MinPort: uint16(rc.MinPort), MaxPort: uint16(rc.MaxPort), Secret: secret,
		MaxAllocationsPerUser: rc.MaxAllocs, AllocationRate: rc.AllocRate, UserRate: rc.UserRate,
		Threads: rc.Threads, Log: log}
	if c.Threads == 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	if rc.ExternalIP != "" {
		c.ExternalIP = net.ParseIP(rc.ExternalIP)
	}
	if rc.TLSAddr != "" {
		tc, err := relayTLS(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		c.TLS = tc
	}
	s, err := relay.Start(c)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	return s, nil
}

// relayTLS is TURN over TLS with the node's server certificate: TLS 1.2 for
// existing TURN clients, with ECDHE and AEAD ciphers only (RFC 7525 §4.2),
// no client certificate (the TURN credentials authenticate).
func relayTLS(dir string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, ca.ServerCertFile), filepath.Join(dir, ca.ServerKeyFile))
	if err != nil {
		return nil, fmt.Errorf("relay tls certificate: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		}}, nil
}

// RelaySecretPath is where cfg keeps the relay's shared secret.
func RelaySecretPath(cfg Config) string { return secretPath(cfg.DataDir, cfg.Relay.SecretFile) }
