package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/metrics"
	"github.com/phonex/phonex/internal/server/presence"
	"github.com/phonex/phonex/internal/server/proxy"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/throttle"
)

// SuiteSIP marks a standard SIP device: digest credentials, no certificate,
// no end-to-end keys.
const SuiteSIP = "sip"

// SIPTLSConfig is the SIP listener's TLS: 1.2 accepted for standard phones,
// 1.3 preferred; a client certificate requested (PhoneX devices) but not
// required (standard phones use digest). TLS 1.2 offers only ECDHE with
// AEAD ciphers (RFC 7525 §4.2): no CBC, no SHA-1 MAC, no static RSA key
// exchange. TLS 1.3's suites are all AEAD.
func (n *Node) SIPTLSConfig() (*tls.Config, error) {
	tc, err := n.TLSConfig()
	if err != nil {
		return nil, err
	}
	tc.MinVersion = tls.VersionTLS12
	// Devices hold one connection for hours; resuming is rare, and a
	// connection that may send tickets keeps its resumption secret for
	// its whole life.
	tc.SessionTicketsDisabled = true
	tc.CipherSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	return tc, nil
}

// sipLimits are the configured SIP limits, the total lowered to leave room
// in the file descriptor limit for the API, the database and logs.
func (n *Node) sipLimits() proxy.Limits {
	s := n.cfg.SIP
	maxConns := s.MaxConns
	if n.fdLimit > 0 {
		reserve := min(n.fdLimit/2, 256)
		if fit := int(min(n.fdLimit-reserve, 1<<30)); fit < maxConns {
			n.log.Warn("sip_max_connections lowered to fit the file descriptor limit", "configured", maxConns, "max", fit)
			maxConns = fit
		}
	}
	return proxy.Limits{MaxConns: maxConns, MaxConnsPerSource: s.MaxConnsPerSource, HandshakeTimeout: s.HandshakeTimeout,
		ReadTimeout: s.ReadTimeout, IdleTimeout: s.IdleTimeout}
}

// Certificate implements proxy.Authenticator.
func (n *Node) Certificate(ctx context.Context, cert *x509.Certificate) (proxy.Identity, error) {
	c, err := n.checkCert(ctx, cert)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return proxy.Identity{}, &proxy.Refusal{Status: 403, Reason: "Forbidden: " + ae.Message}
		}
		return proxy.Identity{}, err
	}
	return proxy.Identity{AccountID: c.account.ID, DeviceID: c.device.ID, Account: c.account.Name, Device: c.device.Name}, nil
}

// SIPCredential implements proxy.Authenticator.
func (n *Node) SIPCredential(ctx context.Context, username string) (proxy.Identity, []byte, error) {
	d, sealed, err := n.st.SIPCredential(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		return proxy.Identity{}, nil, &proxy.Refusal{Status: 403, Reason: "Forbidden"}
	}
	if err != nil {
		return proxy.Identity{}, nil, err
	}
	if d.Status != store.StatusActive {
		return proxy.Identity{}, nil, &proxy.Refusal{Status: 403, Reason: "Forbidden: device revoked"}
	}
	a, err := n.st.Account(ctx, d.Account)
	if err != nil {
		return proxy.Identity{}, nil, err
	}
	if a.Status == store.StatusDisabled {
		return proxy.Identity{}, nil, &proxy.Refusal{Status: 403, Reason: "Forbidden: account disabled"}
	}
	ha1, err := n.seal.open(sealed, "sip/"+username)
	if err != nil {
		return proxy.Identity{}, nil, err
	}
	return proxy.Identity{AccountID: a.ID, DeviceID: d.ID, Account: a.Name, Device: d.Name}, ha1, nil
}

// SIPAttempt implements proxy.Authenticator. A phone's digest password is
// guarded like the account password: a few free attempts, then a doubling
// delay, then a lock lifted by 'phonexd device unlock'. The attempt is
// judged and counted in one step, so parallel guesses cannot pass together.
func (n *Node) SIPAttempt(ctx context.Context, deviceID int64) error {
	now := n.now()
	var refused *proxy.Refusal
	_, err := n.st.TryAttempt(ctx, now, []store.AttemptSubject{{Subject: store.SubjectDevice, ID: deviceID}}, func(cs []store.Attempts) error {
		switch v := n.accPol.Check(throttle.State(cs[0]), now); {
		case v.Locked:
			refused = &proxy.Refusal{Status: 403, Reason: "Forbidden: device locked after failed attempts"}
		case v.RetryAfter > 0:
			refused = &proxy.Refusal{Status: 503, Reason: "Service Unavailable: too many failed attempts", RetryAfter: v.RetryAfter}
		default:
			return nil
		}
		return refused
	})
	if refused != nil {
		n.metrics.AuthRefused(metrics.AuthSIP, sipRefusedState(refused))
		return refused
	}
	return err
}

// SIPVerified implements proxy.Authenticator.
func (n *Node) SIPVerified(ctx context.Context, deviceID int64) error {
	return n.st.ResetAttempts(ctx, store.SubjectDevice, deviceID)
}

func (n *Node) newProxy() (*proxy.Proxy, error) {
	tc, err := n.SIPTLSConfig()
	if err != nil {
		return nil, err
	}
	// Digest nonces need a key only for this process's lifetime.
	key := make([]byte, 32)
	rand.Read(key)
	pres := presence.New(n.log)
	n.mu.Lock()
	n.pres = pres
	n.mu.Unlock()
	link, err := n.joinBus()
	if err != nil {
		return nil, err
	}
	p, err := proxy.New(proxy.Config{Presence: pres, Calls: pres, Domain: n.cfg.Domain, Store: n.st, Auth: n, TLS: tc, Log: n.log, NonceKey: key,
		Rate: n.cfg.MessageRate, Burst: n.cfg.MessageBurst, MaxStored: n.cfg.MaxStoredBytes, StoreFirst: n.cfg.MessageStoreFirst,
		Limits: n.sipLimits(), KeepTLS: !n.cfg.SIPTLSTakeover, UnauthRate: n.cfg.SIP.UnauthRate, UnauthBurst: n.cfg.SIP.UnauthBurst, Attempts: n.accPol, Policies: n,
		Metrics:    n.metrics,
		Federation: n.federation(),
		Bus:        link.busOf()})
	link.attach(p)
	return p, err
}

// ServeSIP runs the SIP registrar and message proxy on ln until ctx ends.
func (n *Node) ServeSIP(ctx context.Context, ln net.Listener) error {
	return n.ServeSIPPhones(ctx, ln, nil)
}

// ServeSIPPhones runs the SIP registrar and message proxy on ln (devices,
// client certificate requested) and, when phones is not nil, on phones
// (standard phones: no certificate requested, digest only).
func (n *Node) ServeSIPPhones(ctx context.Context, ln, phones net.Listener) error {
	p, err := n.newProxy()
	if err != nil {
		return err
	}
	if phones != nil {
		if err := p.AddPhoneListener(phones); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.sipLive = ln.Addr().String()
	n.mu.Unlock()
	n.live.setProxy(p)
	return p.Serve(ctx, ln)
}

// SIPDevice is the answer of 'phonexd device add-sip': what to type into a
// phone's account settings.
type SIPDevice struct {
	Device   string `json:"device"`
	Identity string `json:"identity"` // the address of record, sip:user@domain
	Username string `json:"username"`
	Password string `json:"password"`
	Realm    string `json:"realm"`
	// Registrar is the phone port the node listens on (registrar and
	// outbound proxy in one), as a SIP URI over TLS; Host and Port are its
	// parts, for phones that ask for them apart. Every value is a string,
	// so the answer reads as one flat map.
	Registrar string `json:"registrar"`
	Host      string `json:"host"`
	Port      string `json:"port"`
	Transport string `json:"transport"`
	// Source says where the address comes from: "listener" (the running
	// node listens there) or "configuration" (the node is not running).
	Source string `json:"source"`
}

// Where a SIPDevice's address comes from.
const (
	SourceListener      = "listener"
	SourceConfiguration = "configuration"
)

// AddSIPDevice creates a standard SIP device with its own digest
// password; its login name is the account's user name, as at any SIP
// provider. The account password is never used for SIP.
func (a *Admin) AddSIPDevice(ctx context.Context, user, name string) (SIPDevice, error) {
	acct, err := a.account(user)
	if err != nil {
		return SIPDevice{}, err
	}
	name = strings.ToLower(name)
	if err := ident.CheckDeviceName(name); err != nil {
		return SIPDevice{}, err
	}
	rec, err := a.st.Account(ctx, acct.String())
	if err != nil {
		return SIPDevice{}, fmt.Errorf("%s: %w", acct, err)
	}
	s, err := loadSealer(a.cfg.DataDir, false)
	if err != nil {
		return SIPDevice{}, err
	}
	addr, live := a.phoneAddr()
	if addr == "" {
		return SIPDevice{}, errors.New("the phone port is off (sip_phone_addr = off in phonexd.conf): a standard phone has nowhere to register")
	}
	username := acct.User
	password := strings.ToLower(strings.ReplaceAll(NewCode(), "-", "")) + strings.ToLower(strings.ReplaceAll(NewCode(), "-", ""))
	if rec.Status == store.StatusPending {
		// A phone-only account is reachable now; it can still enroll a
		// PhoneX device later with its activation code.
		if err := a.st.SetAccountStatus(ctx, rec.Name, store.StatusActive); err != nil {
			return SIPDevice{}, err
		}
	}
	d, err := a.st.CreateDevice(ctx, store.Device{AccountID: rec.ID, Name: strings.ToLower(name), Handle: newHandle(), Suite: SuiteSIP,
		Serial: "-", Cert: []byte{}, SealedOPRF: []byte{}, Created: a.now()})
	if err != nil {
		return SIPDevice{}, fmt.Errorf("add sip device %s/%s: %w", acct, name, err)
	}
	if err := a.st.SetPhoneLogin(ctx, d.ID, username, s.seal(proxy.HA1(username, a.cfg.Domain, password), phoneLoginLabel(d.ID, username))); err != nil {
		return SIPDevice{}, err
	}
	// USER.NAME, the login name of earlier versions, names this phone alone
	// with the same password, for set-ups that have it; taken already (by
	// another account's phone), it is simply not offered.
	byDevice := acct.User + "." + d.Name
	err = a.st.SetSIPCredential(ctx, d.ID, byDevice, s.seal(proxy.HA1(byDevice, a.cfg.Domain, password), "sip/"+byDevice))
	if err != nil && !errors.Is(err, store.ErrExists) {
		return SIPDevice{}, err
	}
	out := SIPDevice{Device: acct.String() + "/" + d.Name, Identity: "sip:" + acct.String(), Username: username, Password: password,
		Realm: a.cfg.Domain, Transport: "tls", Source: SourceConfiguration}
	if live {
		out.Source = SourceListener
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return out, fmt.Errorf("phone address %q: %w", addr, err)
	}
	out.Host, out.Port = host, port
	out.Registrar = "sip:" + net.JoinHostPort(host, port) + ";transport=tls"
	return out, a.op.Record(ctx, a.actor, "device.add-sip", out.Device, "")
}

// phoneLoginLabel binds a sealed phone HA1 to its device and login name,
// so a row copied to another device does not open.
func phoneLoginLabel(deviceID int64, username string) string {
	return fmt.Sprintf("sip-login/%d/%s", deviceID, username)
}

// SIPCredentials implements proxy.PhoneLogins: the active phones a digest
// username names (the account's user name, or a per-device name of a phone
// added before), with their HA1.
func (n *Node) SIPCredentials(ctx context.Context, username string) ([]proxy.Credential, error) {
	ls, err := n.st.PhoneLogins(ctx, username)
	if err != nil {
		return nil, err
	}
	var out []proxy.Credential
	refusal := &proxy.Refusal{Status: 403, Reason: "Forbidden"}
	for _, l := range ls {
		d := l.Device
		if d.Status != store.StatusActive {
			refusal = &proxy.Refusal{Status: 403, Reason: "Forbidden: device revoked"}
			continue
		}
		a, err := n.st.Account(ctx, d.Account)
		if err != nil {
			return nil, err
		}
		if a.Status == store.StatusDisabled {
			refusal = &proxy.Refusal{Status: 403, Reason: "Forbidden: account disabled"}
			continue
		}
		// A per-device name (sip_credentials) was sealed under its name
		// alone; a login under its device and name.
		ha1, err := n.seal.open(l.HA1, phoneLoginLabel(d.ID, username))
		if err != nil {
			if ha1, err = n.seal.open(l.HA1, "sip/"+username); err != nil {
				return nil, fmt.Errorf("open the digest secret of device %d: %w", d.ID, err)
			}
		}
		out = append(out, proxy.Credential{ID: proxy.Identity{AccountID: a.ID, DeviceID: d.ID, Account: a.Name, Device: d.Name}, HA1: ha1})
	}
	if len(out) == 0 {
		return nil, refusal
	}
	return out, nil
}
