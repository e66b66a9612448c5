// Package ice finds the media path of a call with Interactive Connectivity
// Establishment (RFC 8445) on pion/ice: it gathers host, server-reflexive
// and relayed candidates from the STUN and TURN servers it is given, runs
// the connectivity checks and nomination (the offerer is the controlling
// agent, RFC 8445 §6.1.1) and hands the call one packet transport over
// the selected candidate pair. It does not know SDP: the caller carries
// Params in its session descriptions (RFC 8839).
package ice

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	pice "github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/stun/v4"
)

// Errors callers branch on.
var (
	// ErrNoRelay: relayed candidates were required and none could be
	// gathered (no TURN server given, unreachable, or credentials refused).
	ErrNoRelay = errors.New("ice: no relayed candidate: the TURN relay is unavailable")
	// ErrNoCandidate: gathering found no candidate at all.
	ErrNoCandidate = errors.New("ice: no local candidate")
	// ErrNoPath: the connectivity checks found no working pair.
	ErrNoPath = errors.New("ice: no path to the peer: every candidate pair failed its connectivity check")
	// ErrBadServer: a STUN/TURN URL that cannot be parsed.
	ErrBadServer = errors.New("ice: bad STUN/TURN server URL")
	// ErrBadParams: the peer's ICE parameters cannot be used.
	ErrBadParams = errors.New("ice: bad remote ICE parameters")
)

// Servers are the STUN and TURN servers to gather from, with credentials
// in the TURN REST form ("expiry:user" and its HMAC, as coturn's
// use-auth-secret accepts): URLs such as "stun:198.18.0.1:3478" or
// "turn:relay.example.org:3478?transport=udp" (RFC 7064, RFC 7065).
type Servers struct {
	URLs               []string
	Username, Password string
}

// Config configures one agent.
type Config struct {
	Servers Servers
	// RelayOnly gathers only relayed candidates, so that the peer never
	// learns this side's addresses and media always crosses the relay.
	RelayOnly bool
	// IP limits host candidates to this address when it is valid and not
	// unspecified (then loopback is allowed too); otherwise every
	// interface's addresses are used.
	IP netip.Addr
	// GatherTimeout bounds gathering; 0 means 5 s.
	GatherTimeout time.Duration
	Logger        *slog.Logger
}

// Params are what an agent tells its peer (RFC 8445 §5.3): credentials and
// candidates, the candidates in the candidate-attribute form of RFC 8839
// §5.1 without the "candidate:" prefix.
type Params struct {
	Ufrag, Pwd string
	Candidates []string
	// Lite: the peer is an ICE lite implementation (RFC 8445 §2.5).
	Lite bool
}

// Path is the kind of the selected pair, as the user sees it: "host" when
// both sides use their own addresses, "srflx" when a NAT mapping is
// crossed peer to peer, "relay" when media goes through a TURN relay.
type Path string

// Paths.
const (
	PathHost  Path = "host"
	PathSrflx Path = "srflx"
	PathRelay Path = "relay"
)

// Agent is one ICE session (one component: RTP and RTCP are multiplexed,
// RFC 5761).
type Agent struct {
	cfg   Config
	log   *slog.Logger
	agent *pice.Agent

	mu        sync.Mutex
	path      Path
	onPath    func(Path)
	onLost    func(lost bool)
	lost      bool
	conn      *pice.Conn
	remoteSet bool
}

// New creates an agent; nothing is sent until Gather.
func New(cfg Config) (*Agent, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	urls, err := parseServers(cfg.Servers)
	if err != nil {
		return nil, err
	}
	if cfg.RelayOnly && !hasTURN(urls) {
		return nil, fmt.Errorf("%w: no turn: server given", ErrNoRelay)
	}
	nets := []pice.NetworkType{pice.NetworkTypeUDP4, pice.NetworkTypeUDP6}
	opts := []pice.AgentOption{
		pice.WithUrls(urls),
		pice.WithMulticastDNSMode(pice.MulticastDNSModeDisabled),
		pice.WithLoggerFactory(quietLogger{}),
		// Lets the controlling agent move the media to another pair
		// later (SwitchPath). The nomination attribute is
		// comprehension-optional (0xC001, RFC 8489 §14), so agents that
		// do not know renomination ignore it.
		pice.WithRenomination(pice.DefaultNominationValueGenerator()),
	}
	if cfg.IP.IsValid() && !cfg.IP.IsUnspecified() {
		want := cfg.IP.Unmap()
		opts = append(opts, pice.WithIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && a.Unmap() == want
		}))
		if want.IsLoopback() {
			opts = append(opts, pice.WithIncludeLoopback())
		}
		if want.Is4() {
			nets = nets[:1]
		} else {
			nets = nets[1:]
		}
	}
	opts = append(opts, pice.WithNetworkTypes(nets))
	types := []pice.CandidateType{pice.CandidateTypeHost}
	switch {
	case cfg.RelayOnly:
		types = []pice.CandidateType{pice.CandidateTypeRelay}
		// pion waits 2 s before nominating a relayed pair in case a direct
		// one succeeds; with relayed candidates only, every pair is
		// relayed and the wait only delays the call.
		opts = append(opts, pice.WithRelayAcceptanceMinWait(0))
	case len(urls) > 0:
		types = append(types, pice.CandidateTypeServerReflexive, pice.CandidateTypeRelay)
	}
	opts = append(opts, pice.WithCandidateTypes(types))
	a, err := pice.NewAgentWithOptions(opts...)
	if err != nil {
		return nil, fmt.Errorf("ice: agent: %w", err)
	}
	ag := &Agent{cfg: cfg, log: log, agent: a}
	if err := a.OnSelectedCandidatePairChange(ag.selected); err != nil {
		a.Close()
		return nil, fmt.Errorf("ice: agent: %w", err)
	}
	if err := a.OnConnectionStateChange(ag.state); err != nil {
		a.Close()
		return nil, fmt.Errorf("ice: agent: %w", err)
	}
	return ag, nil
}

func parseServers(s Servers) ([]*stun.URI, error) {
	var urls []*stun.URI
	for _, raw := range s.URLs {
		u, err := stun.ParseURI(raw)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %v", ErrBadServer, raw, err)
		}
		if u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS {
			u.Username, u.Password = s.Username, s.Password
		}
		urls = append(urls, u)
	}
	return urls, nil
}

func hasTURN(urls []*stun.URI) bool {
	for _, u := range urls {
		if u.Scheme == stun.SchemeTypeTURN || u.Scheme == stun.SchemeTypeTURNS {
			return true
		}
	}
	return false
}

// Gather collects the local candidates (not trickled: the description
// carries them all, with a=end-of-candidates, RFC 8840 is not used) and
// returns them with the default candidate for the c= and m= lines
// (RFC 8839 §4.2.1.2): the relayed one when only relays are used,
// otherwise the host candidate, which a peer without ICE can reach on the
// same network.
func (a *Agent) Gather(ctx context.Context) (Params, netip.AddrPort, error) {
	done := make(chan struct{})
	var once sync.Once
	if err := a.agent.OnCandidate(func(c pice.Candidate) {
		if c == nil {
			once.Do(func() { close(done) })
		}
	}); err != nil {
		return Params{}, netip.AddrPort{}, fmt.Errorf("ice: gather: %w", err)
	}
	if err := a.agent.GatherCandidates(); err != nil {
		return Params{}, netip.AddrPort{}, fmt.Errorf("ice: gather: %w", err)
	}
	to := a.cfg.GatherTimeout
	if to == 0 {
		to = 5 * time.Second
	}
	t := time.NewTimer(to)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		a.log.Debug("ICE gathering timed out; using the candidates found so far")
	case <-ctx.Done():
		return Params{}, netip.AddrPort{}, fmt.Errorf("ice: gather: %w", ctx.Err())
	}
	cands, err := a.agent.GetLocalCandidates()
	if err != nil {
		return Params{}, netip.AddrPort{}, fmt.Errorf("ice: gather: %w", err)
	}
	ufrag, pwd, err := a.agent.GetLocalUserCredentials()
	if err != nil {
		return Params{}, netip.AddrPort{}, fmt.Errorf("ice: gather: %w", err)
	}
	p := Params{Ufrag: ufrag, Pwd: pwd}
	var def netip.AddrPort
	var defPrio uint32
	kinds := map[pice.CandidateType]int{}
	for _, c := range keepFew(cands) {
		kinds[c.Type()]++
		p.Candidates = append(p.Candidates, candidateLine(c))
		addr, err := netip.ParseAddr(c.Address())
		if err != nil || c.Port() <= 0 || c.Port() > 65535 {
			continue
		}
		ap := netip.AddrPortFrom(addr.Unmap(), uint16(c.Port()))
		want := pice.CandidateTypeHost
		if a.cfg.RelayOnly {
			want = pice.CandidateTypeRelay
		}
		if c.Type() == want && c.Priority() > defPrio {
			def, defPrio = ap, c.Priority()
		}
	}
	if len(p.Candidates) == 0 || !def.IsValid() {
		if a.cfg.RelayOnly {
			return Params{}, netip.AddrPort{}, ErrNoRelay
		}
		return Params{}, netip.AddrPort{}, ErrNoCandidate
	}
	// Counts only, no addresses: enough to tell whether the STUN and TURN
	// servers answered.
	a.log.Debug("ICE candidates gathered", "host", kinds[pice.CandidateTypeHost],
		"srflx", kinds[pice.CandidateTypeServerReflexive], "relay", kinds[pice.CandidateTypeRelay])
	return p, def, nil
}

// maxPerType bounds the candidates of each type in a description: a
// machine with many interfaces (bridges, VPNs, IPv6 addresses) would
// otherwise make an offer too large for one UDP datagram (RFC 3261
// §18.1.1), and the extra host addresses rarely add a working path.
const maxPerType = 3

// keepFew keeps the maxPerType highest-priority candidates of each type,
// in priority order.
func keepFew(cands []pice.Candidate) []pice.Candidate {
	sorted := slices.Clone(cands)
	slices.SortStableFunc(sorted, func(x, y pice.Candidate) int { return cmp.Compare(y.Priority(), x.Priority()) })
	n := map[pice.CandidateType]int{}
	var out []pice.Candidate
	for _, c := range sorted {
		if n[c.Type()] < maxPerType {
			n[c.Type()]++
			out = append(out, c)
		}
	}
	return out
}

// candidateLine renders a candidate-attribute value (RFC 8839 §5.1)
// without pion's extension attributes (ufrag, generation, network-id):
// they add nothing the peer needs, and a description must fit one UDP
// datagram with the SIP headers (RFC 3261 §18.1.1). A relayed candidate's
// related address (our server-reflexive address) is not revealed: §5.1
// lets it be 0.0.0.0 port 9, which keeps an address hidden behind the
// relay.
func candidateLine(c pice.Candidate) string {
	f := c.Foundation()
	if strings.TrimSpace(f) == "" {
		f = "0"
	}
	s := fmt.Sprintf("%s %d %s %d %s %d typ %s", f, c.Component(), c.NetworkType().NetworkShort(), c.Priority(),
		c.Address(), c.Port(), c.Type())
	switch r := c.RelatedAddress(); {
	case c.Type() == pice.CandidateTypeRelay:
		s += " raddr 0.0.0.0 rport 9"
	case r != nil && r.Address != "":
		s += fmt.Sprintf(" raddr %s rport %d", r.Address, r.Port)
	}
	if c.TCPType() != pice.TCPTypeUnspecified {
		s += " tcptype " + c.TCPType().String()
	}
	return s
}

// OnPathChange sets a function called with the path of every newly
// selected pair (the first one and each later change). It must not block.
func (a *Agent) OnPathChange(f func(Path)) {
	a.mu.Lock()
	a.onPath = f
	a.mu.Unlock()
}

func (a *Agent) selected(local, remote pice.Candidate) {
	p := PathOf(local.Type(), remote.Type())
	a.mu.Lock()
	changed := p != a.path
	a.path = p
	f := a.onPath
	a.mu.Unlock()
	a.log.Debug("ICE pair selected", "local", local.Type().String(), "remote", remote.Type().String())
	if changed && f != nil {
		f(p)
	}
}

// OnLost sets a function called with true when the selected pair stops
// answering the keepalive checks (consent, RFC 7675: disconnected after
// 5 s, failed after 30 s), and with false when it answers again.
func (a *Agent) OnLost(f func(lost bool)) {
	a.mu.Lock()
	a.onLost = f
	a.mu.Unlock()
}

func (a *Agent) state(s pice.ConnectionState) {
	var lost bool
	switch s {
	case pice.ConnectionStateDisconnected, pice.ConnectionStateFailed:
		lost = true
	case pice.ConnectionStateConnected, pice.ConnectionStateCompleted:
	default:
		return
	}
	a.mu.Lock()
	changed := lost != a.lost
	a.lost = lost
	f := a.onLost
	a.mu.Unlock()
	if changed && f != nil {
		f(lost)
	}
}

// PathOf names the path of a pair: relayed if either end is relayed,
// server-reflexive if either end crosses a NAT (srflx or prflx), host
// otherwise.
func PathOf(local, remote pice.CandidateType) Path {
	switch {
	case local == pice.CandidateTypeRelay || remote == pice.CandidateTypeRelay:
		return PathRelay
	case local == pice.CandidateTypeServerReflexive || remote == pice.CandidateTypeServerReflexive,
		local == pice.CandidateTypePeerReflexive || remote == pice.CandidateTypePeerReflexive:
		return PathSrflx
	}
	return PathHost
}

// Path is the path of the selected pair, "" before one is selected.
func (a *Agent) Path() Path {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.path
}

// SetRemote adds the peer's candidates. The answerer calls it as soon as
// it has the offer, before its answer is sent: the offerer's checks may
// then arrive before Connect, and they must meet known candidates rather
// than make peer-reflexive ones (RFC 8445 §7.3.1.3) that would misname
// the path.
func (a *Agent) SetRemote(remote Params) error {
	if remote.Ufrag == "" || remote.Pwd == "" {
		return fmt.Errorf("%w: no ice-ufrag or ice-pwd", ErrBadParams)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.remoteSet {
		return nil
	}
	// Errors name the candidate, so its address: only counted in the
	// log, which must not say whom a device talks to.
	added, ignored := 0, 0
	for _, raw := range remote.Candidates {
		c, err := pice.UnmarshalCandidate(raw)
		if err == nil {
			err = a.agent.AddRemoteCandidate(c)
		}
		if err != nil {
			ignored++
			continue
		}
		added++
	}
	if ignored > 0 {
		a.log.Debug("remote ICE candidates ignored", "count", ignored)
	}
	if added == 0 {
		return fmt.Errorf("%w: no usable candidate", ErrBadParams)
	}
	if remote.Lite {
		if err := a.agent.SetRemoteICELite(true); err != nil {
			return fmt.Errorf("ice: %w", err)
		}
	}
	a.remoteSet = true
	return nil
}

// Connect adds the peer's candidates (unless SetRemote did), runs the
// connectivity checks and returns once a pair is selected; controlling is
// true for the offerer (RFC 8445 §6.1.1). The connection follows later
// pair changes by itself.
func (a *Agent) Connect(ctx context.Context, remote Params, controlling bool) (*Conn, error) {
	if err := a.SetRemote(remote); err != nil {
		return nil, err
	}
	var conn *pice.Conn
	var err error
	if controlling {
		conn, err = a.agent.Dial(ctx, remote.Ufrag, remote.Pwd)
	} else {
		conn, err = a.agent.Accept(ctx, remote.Ufrag, remote.Pwd)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%v)", ErrNoPath, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %v", ErrNoPath, err)
	}
	a.mu.Lock()
	a.conn = conn
	a.mu.Unlock()
	// The handler runs asynchronously; make the first path known now.
	if pair, err := a.agent.GetSelectedCandidatePair(); err == nil && pair != nil {
		a.selected(pair.Local, pair.Remote)
	}
	return &Conn{c: conn, a: a}, nil
}

// ErrNoSuchPath: SwitchPath found no candidate pair of the kind asked for.
var ErrNoSuchPath = errors.New("ice: no candidate pair of that kind")

// SwitchPath asks the peer to move the media to a pair of kind p, for
// instance to the relay when the direct path degrades: the controlling
// agent (the offerer) renominates that pair (pion's renomination,
// draft-thatcher-ice-renomination); the path changes on both sides once
// the peer confirms. The media transport follows: nothing above it (ZRTP,
// SRTP) is restarted.
func (a *Agent) SwitchPath(p Path) error {
	locals, err := a.agent.GetLocalCandidates()
	if err != nil {
		return fmt.Errorf("ice: switch path: %w", err)
	}
	remotes, err := a.agent.GetRemoteCandidates()
	if err != nil {
		return fmt.Errorf("ice: switch path: %w", err)
	}
	for _, l := range locals {
		for _, r := range remotes {
			if l.NetworkType() != r.NetworkType() || PathOf(l.Type(), r.Type()) != p {
				continue
			}
			if err := a.agent.RenominateCandidate(l, r); err == nil {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s", ErrNoSuchPath, p)
}

// Close ends the session and frees its sockets and allocations.
func (a *Agent) Close() error {
	if err := a.agent.Close(); err != nil && !errors.Is(err, pice.ErrClosed) {
		return fmt.Errorf("ice: close: %w", err)
	}
	return nil
}

// Conn sends and receives datagrams over the selected pair. STUN
// (connectivity checks, consent) is taken out by the agent; everything
// else (ZRTP, SRTP, SRTCP) is handed on.
type Conn struct {
	c *pice.Conn
	a *Agent
}

// Read reads one datagram.
func (c *Conn) Read(b []byte) (int, error) { return c.c.Read(b) }

// Write sends one datagram on the selected pair.
func (c *Conn) Write(b []byte) (int, error) { return c.c.Write(b) }

// Path is the kind of the selected pair.
func (c *Conn) Path() Path { return c.a.Path() }

// Remote is the peer's address on the selected pair.
func (c *Conn) Remote() netip.AddrPort {
	if ua, ok := c.c.RemoteAddr().(*net.UDPAddr); ok && ua != nil {
		return ua.AddrPort()
	}
	return netip.AddrPort{}
}

// Close ends the session.
func (c *Conn) Close() error { return c.a.Close() }

// quietLogger keeps pion's own logging off: its messages carry candidate
// addresses, which say who talks to whom; failures reach the caller as
// errors instead.
type quietLogger struct{}

func (quietLogger) NewLogger(string) logging.LeveledLogger { return quietLeveled{} }

type quietLeveled struct{}

func (quietLeveled) Trace(string)          {}
func (quietLeveled) Tracef(string, ...any) {}
func (quietLeveled) Debug(string)          {}
func (quietLeveled) Debugf(string, ...any) {}
func (quietLeveled) Info(string)           {}
func (quietLeveled) Infof(string, ...any)  {}
func (quietLeveled) Warn(string)           {}
func (quietLeveled) Warnf(string, ...any)  {}
func (quietLeveled) Error(string)          {}
func (quietLeveled) Errorf(string, ...any) {}
