package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// RelayConfig is the STUN/TURN relay's section of the configuration.
type RelayConfig struct {
	Enabled       bool          // run the relay inside phonexd serve
	Addr          string        // UDP and TCP listeners (STUN and TURN)
	TLSAddr       string        // TURN over TLS with the server certificate; empty: off
	ExternalIP    string        // the relay's public address (XOR-RELAYED-ADDRESS and the URIs); empty: the listener's
	MinPort       int           // relayed sockets' ports, inclusive
	MaxPort       int           //
	SecretFile    string        // shared secret of the TURN REST credentials, relative to the data directory
	CredentialTTL time.Duration // lifetime of credentials handed to devices
	MaxAllocs     int           // allocations per user at once; 0: no cap
	AllocRate     int           // relayed bytes per second per allocation; 0: no limit
	UserRate      int           // relayed bytes per second per user; 0: no limit
	Threads       int           // UDP readers; 0: one per CPU
	URLs          []string      // further relays (turn:, turns:, stun: URIs) handed out with the same credentials
}

func relayDefaults() RelayConfig {
	return RelayConfig{Enabled: true, Addr: "127.0.0.1:3478", TLSAddr: "127.0.0.1:5349", MinPort: 49152, MaxPort: 65535,
		SecretFile: "relay.secret", CredentialTTL: 12 * time.Hour, MaxAllocs: 10, AllocRate: 64000, UserRate: 256000}
}

func (r RelayConfig) validate() error {
	var errs []error
	for _, a := range []struct{ name, v string }{{"relay_addr", r.Addr}, {"relay_tls_addr", r.TLSAddr}} {
		if a.v == "" && a.name == "relay_tls_addr" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", a.name, a.v, err))
		}
	}
	if r.ExternalIP != "" && net.ParseIP(r.ExternalIP) == nil {
		errs = append(errs, fmt.Errorf("relay_external_ip %q: not an IP address", r.ExternalIP))
	}
	if r.MinPort < 1 || r.MaxPort > 65535 || r.MinPort > r.MaxPort {
		errs = append(errs, fmt.Errorf("relay ports %d-%d: need 1 <= relay_min_port <= relay_max_port <= 65535", r.MinPort, r.MaxPort))
	}
	if r.SecretFile == "" {
		errs = append(errs, errors.New("relay_secret_file: empty"))
	}
	if r.CredentialTTL < time.Minute || r.CredentialTTL > 7*24*time.Hour {
		errs = append(errs, fmt.Errorf("relay_credential_ttl %v: between 1m and 168h", r.CredentialTTL))
	}
	if r.MaxAllocs < 0 || r.AllocRate < 0 || r.UserRate < 0 || r.Threads < 0 || r.Threads > 256 {
		errs = append(errs, errors.New("relay quotas: relay_max_allocations, relay_allocation_rate, relay_user_rate >= 0 (0: no limit), relay_threads 0-256"))
	}
	for _, u := range r.URLs {
		if !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") && !strings.HasPrefix(u, "stun:") {
			errs = append(errs, fmt.Errorf("relay_urls %q: want turn:, turns: or stun: URIs (RFC 7064, RFC 7065)", u))
		}
	}
	return errors.Join(errs...)
}

func (r RelayConfig) encode(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n# STUN/TURN relay for calls (RFC 8489, RFC 8656). relay_addr takes STUN and TURN over\n# UDP and TCP, relay_tls_addr TURN over TLS with the server certificate (empty: off).\n# relay_external_ip is the public address put in relayed addresses and handed to\n# devices (empty: the listener's). Relayed sockets use ports relay_min_port to\n# relay_max_port. Devices get credentials for relay_credential_ttl in the TURN REST\n# format, signed with the secret in relay_secret_file (coturn: use-auth-secret,\n# static-auth-secret = the same line). Per user: relay_max_allocations at once and\n# relay_user_rate bytes/s; per allocation relay_allocation_rate bytes/s (0: no limit).\n# relay_threads UDP readers (0: one per CPU). relay_urls: further relays (turn:,\n# turns:, stun: URIs, comma-separated) handed out beside this one, or instead of it\n# with relay_enabled = false.\n")
	fmt.Fprintf(b, "relay_enabled = %t\nrelay_addr = %s\nrelay_tls_addr = %s\nrelay_external_ip = %s\nrelay_min_port = %d\nrelay_max_port = %d\n",
		r.Enabled, r.Addr, r.TLSAddr, r.ExternalIP, r.MinPort, r.MaxPort)
	fmt.Fprintf(b, "relay_secret_file = %s\nrelay_credential_ttl = %s\nrelay_max_allocations = %d\nrelay_allocation_rate = %d\nrelay_user_rate = %d\nrelay_threads = %d\nrelay_urls = %s\n",
		r.SecretFile, r.CredentialTTL, r.MaxAllocs, r.AllocRate, r.UserRate, r.Threads, strings.Join(r.URLs, ", "))
}

// parse sets the setting k if it belongs to the relay; ok is false if not.
func (r *RelayConfig) parse(k, v string) (ok bool, err error) {
	switch k {
	case "relay_enabled":
		r.Enabled, err = strconv.ParseBool(v)
	case "relay_addr":
		r.Addr = v
	case "relay_tls_addr":
		r.TLSAddr = v
	case "relay_external_ip":
		r.ExternalIP = v
	case "relay_min_port":
		r.MinPort, err = strconv.Atoi(v)
	case "relay_max_port":
		r.MaxPort, err = strconv.Atoi(v)
	case "relay_secret_file":
		r.SecretFile = v
	case "relay_credential_ttl":
		r.CredentialTTL, err = time.ParseDuration(v)
	case "relay_max_allocations":
		r.MaxAllocs, err = strconv.Atoi(v)
	case "relay_allocation_rate":
		r.AllocRate, err = strconv.Atoi(v)
	case "relay_user_rate":
		r.UserRate, err = strconv.Atoi(v)
	case "relay_threads":
		r.Threads, err = strconv.Atoi(v)
	case "relay_urls":
		r.URLs = nil
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				r.URLs = append(r.URLs, u)
			}
		}
	default:
		return false, nil
	}
	return true, err
}
