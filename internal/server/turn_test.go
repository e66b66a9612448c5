package server

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/relay"
)

func TestConfigRelay(t *testing.T) {
	c := Defaults("/d")
	c.Relay = RelayConfig{Enabled: false, Addr: "0.0.0.0:3478", TLSAddr: "", ExternalIP: "198.51.100.7", MinPort: 40000, MaxPort: 40100,
		SecretFile: "/etc/phonex/relay.secret", CredentialTTL: 2 * time.Hour, MaxAllocs: 3, AllocRate: 1000, UserRate: 0, Threads: 4,
		URLs: []string{"turn:relay2.example.org:3478?transport=udp", "stun:relay2.example.org:3478"}}
	back, err := ParseConfig("/d", c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(back.Relay.URLs, " ") != strings.Join(c.Relay.URLs, " ") {
		t.Fatalf("urls %v", back.Relay.URLs)
	}
	if !reflect.DeepEqual(back.Relay, c.Relay) {
		t.Fatalf("round trip: %+v, want %+v", back.Relay, c.Relay)
	}
	for _, in := range []string{"relay_enabled = maybe", "relay_addr = nowhere", "relay_external_ip = host.example.org",
		"relay_min_port = 0", "relay_min_port = 5000\nrelay_max_port = 4000", "relay_max_port = 70000", "relay_credential_ttl = 10s",
		"relay_credential_ttl = 720h", "relay_max_allocations = -1", "relay_user_rate = -5", "relay_urls = http://relay.example.org",
		"relay_secret_file = "} {
		if _, err := ParseConfig("/d", []byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func openNode(t *testing.T, mod func(*Config)) *Node {
	t.Helper()
	ctx := context.Background()
	cfg := Defaults(t.TempDir())
	cfg.Domain = "example.org"
	cfg.Hosts = []string{"127.0.0.1"}
	cfg.Relay.Addr, cfg.Relay.TLSAddr = "127.0.0.1:0", "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	if _, err := Init(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n, err := Open(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

var alpha = &caller{id: ident.Device{Account: ident.Account{User: "alpha", Domain: "example.org"}, Name: "laptop"}}

// TestTURNCredentials: GET /v1/turn hands out credentials the relay's own
// check accepts, for the node's relay and the relays of relay_urls; a node
// without any answers relay_unavailable.
func TestTURNCredentials(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		name      string
		enabled   bool
		urls      []string
		wantTURN  int
		wantSTUN  int
		wantPorts bool
	}{
		{"own relay", true, nil, 3, 1, true},
		{"own and external", true, []string{"turns:relay2.example.org:443?transport=tcp", "stun:relay2.example.org:3478"}, 4, 2, true},
		{"external only", false, []string{"turn:relay2.example.org:3478?transport=udp"}, 1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := openNode(t, func(c *Config) { c.Relay.Enabled, c.Relay.URLs = tc.enabled, tc.urls })
			line, err := n.ServeRelay(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tc.enabled != strings.HasPrefix(line, "relay: udp 127.0.0.1:") {
				t.Fatalf("listener line %q", line)
			}
			v, err := n.turnCredentials(ctx, nil, alpha)
			if err != nil {
				t.Fatal(err)
			}
			cr := v.(api.TURNCredentials)
			if len(cr.URIs) != tc.wantTURN || len(cr.STUN) != tc.wantSTUN || cr.TTL != int((12*time.Hour)/time.Second) {
				t.Fatalf("credentials %+v", cr)
			}
			if tc.enabled && !strings.HasPrefix(cr.URIs[0], "turn:127.0.0.1:") {
				t.Fatalf("own relay not first: %v", cr.URIs)
			}
			secret, err := relay.LoadSecret(RelaySecretPath(n.cfg))
			if err != nil {
				t.Fatal(err)
			}
			user, err := relay.Check(cr.Username, time.Now())
			if err != nil || user != relay.Pseudonym(secret, "alpha@example.org") || strings.Contains(cr.Username, "alpha") {
				t.Fatalf("username %q: %q, %v", cr.Username, user, err)
			}
			if cr.Password != relay.Password(secret, cr.Username) {
				t.Fatal("password is not HMAC-SHA1 of the username under the secret file's key")
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		n := openNode(t, func(c *Config) { c.Relay.Enabled = false })
		if line, err := n.ServeRelay(ctx); err != nil || line != "" {
			t.Fatalf("%q, %v", line, err)
		}
		_, err := n.turnCredentials(ctx, nil, alpha)
		if !errors.Is(err, &api.Error{Code: api.CodeRelayUnavailable}) {
			t.Fatalf("%v, want relay_unavailable", err)
		}
	})
}
