// Package iceturn runs a small STUN/TURN server (pion/turn, RFC 8489 and
// RFC 8656) for tests of the call path: it accepts time-limited TURN REST
// credentials made from a shared secret, as coturn's use-auth-secret
// does, and counts the allocations it made.
package iceturn

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/phonex/phonex/internal/ice"
	"github.com/phonex/phonex/internal/udptcp"
	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// Server is a running STUN/TURN server on one UDP socket and, at the same
// port, one TCP listener (RFC 8656 §3.1: TURN over TCP).
type Server struct {
	srv    *turn.Server
	addr   netip.AddrPort
	secret string
	allocs atomic.Int64
}

// Start listens on listen (IP:PORT, port 0 for a free one) over UDP and
// TCP and relays from the same IP. secret is the shared secret
// credentials are made from.
func Start(listen, secret string) (*Server, error) {
	pc, ln, err := udptcp.Listen("udp4", "tcp4", listen)
	if err != nil {
		return nil, fmt.Errorf("iceturn: %w", err)
	}
	ap := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	s := &Server{addr: ap, secret: secret}
	relay := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorStatic{RelayAddress: net.IP(ap.Addr().AsSlice()), Address: ap.Addr().String()}
	}
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelDisabled
	s.srv, err = turn.NewServer(turn.ServerConfig{
		Realm:         "phonex",
		LoggerFactory: lf,
		AuthHandler:   turn.LongTermTURNRESTAuthHandler(secret, lf.NewLogger("turn")),
		EventHandler: turn.EventHandler{
			OnAllocationCreated: func(net.Addr, net.Addr, string, string, string, net.Addr, int) { s.allocs.Add(1) },
		},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: pc, RelayAddressGenerator: relay()}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: ln, RelayAddressGenerator: relay()}},
	})
	if err != nil {
		pc.Close()
		ln.Close()
		return nil, fmt.Errorf("iceturn: %w", err)
	}
	return s, nil
}

// Addr is the server's address.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Allocations is how many TURN allocations were made.
func (s *Server) Allocations() int { return int(s.allocs.Load()) }

// Servers returns the TURN URL of this server with credentials
// for user valid for an hour.
func (s *Server) Servers(user string) (ice.Servers, error) {
	return Credentials(net.JoinHostPort(s.addr.Addr().String(), strconv.Itoa(int(s.addr.Port()))), s.secret, user)
}

// Credentials returns the TURN URL of a server at addr (host:port) with
// TURN REST credentials made from secret for user, valid for an hour (a
// TURN server answers STUN Binding requests too, so the URL also yields
// server-reflexive candidates): the username "expiry:user" and the base64 HMAC-SHA1 of it.
func Credentials(addr, secret, user string) (ice.Servers, error) {
	name, pass, err := turn.GenerateLongTermTURNRESTCredentials(secret, user, time.Hour)
	if err != nil {
		return ice.Servers{}, fmt.Errorf("iceturn: credentials: %w", err)
	}
	return ice.Servers{URLs: []string{"turn:" + addr + "?transport=udp"}, Username: name, Password: pass}, nil
}

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }
