package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/ident"
)

// ContentType is the SIP body type of a PhoneX message envelope; the body is
// the envelope's protobuf bytes.
const ContentType = "application/vnd.phonex.envelope"

// sipLink is the device's SIP over TLS connection to its home cluster,
// authenticated by the device certificate. Requests the cluster sends back
// over it (delivered messages) go to onMessage.
type sipLink struct {
	addr    string
	account ident.Account
	device  ident.Device
	ua      *sipgo.UserAgent
	cli     *sipgo.Client
	srv     *sipgo.Server
	log     *slog.Logger

	mu        sync.Mutex
	onMessage func(req *sip.Request) (int, string)
	onNotify  func(req *sip.Request) (int, string) // presence.go
	calls     callHandler                          // takes INVITE, ACK and BYE; nil refuses calls
	seen      bool                                 // the connection was in the pool once (failover.go)
}

func init() {
	// sipgo logs through a package-wide logger; its transport chatter is
	// not ours to show. Our own logs say what failed.
	sip.SetDefaultLogger(slog.New(slog.DiscardHandler))
}

func dialSIP(addr string, dev ident.Device, caCert *x509.Certificate, cert tls.Certificate, log *slog.Logger) (*sipLink, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sip address %q: %w", addr, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	tc := &tls.Config{RootCAs: pool, ServerName: host, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("phonex"), sipgo.WithUserAgentHostname(dev.Domain), sipgo.WithUserAgenTLSConfig(tc))
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.DiscardHandler)
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(quiet))
	if err != nil {
		ua.Close()
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(quiet))
	if err != nil {
		ua.Close()
		return nil, err
	}
	l := &sipLink{addr: addr, account: dev.Account, device: dev, ua: ua, cli: cli, srv: srv, log: log}
	srv.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
		l.mu.Lock()
		h := l.onMessage
		l.mu.Unlock()
		code, reason := 480, "Not listening"
		if h != nil {
			code, reason = h(req)
		}
		tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	})
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		l.mu.Lock()
		h := l.onNotify
		l.mu.Unlock()
		code, reason := 481, "Subscription Does Not Exist"
		if h != nil {
			code, reason = h(req)
		}
		tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	})
	srv.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	l.serveCalls(srv)
	return l, nil
}

func (l *sipLink) close() { l.ua.Close() }

func (l *sipLink) uri(a ident.Account) sip.Uri {
	return sip.Uri{Scheme: "sip", User: a.User, Host: a.Domain}
}

func (l *sipLink) prepare(req *sip.Request) {
	req.SetTransport("TLS")
	req.SetDestination(l.addr)
}

// register binds this device for expires seconds (0 unbinds).
func (l *sipLink) register(ctx context.Context, expires int) error {
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: l.account.Domain})
	from := &sip.FromHeader{Address: l.uri(l.account), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: l.uri(l.account), Params: sip.NewParams()})
	contact := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: l.account.User, Host: l.account.Domain,
		UriParams: sip.NewParams(), Headers: sip.NewParams()}, Params: sip.NewParams()}
	contact.Address.UriParams.Add("transport", "tls")
	contact.Params.Add("+sip.instance", strconv.Quote("<urn:phonex:"+l.device.Name+">"))
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	l.prepare(req)
	res, err := l.do(ctx, req)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	if res.StatusCode != 200 {
		return &SIPError{Code: res.StatusCode, Reason: res.Reason}
	}
	l.lost() // the connection is pooled now: from here on its loss shows
	return nil
}

// SIPError is a final non-2xx answer of the cluster.
type SIPError struct {
	Code   int
	Reason string
}

func (e *SIPError) Error() string { return fmt.Sprintf("cluster answered %d %s", e.Code, e.Reason) }

// Permanent reports whether retrying the same request cannot succeed:
// 4xx but 408 and 480 (RFC 3261 §21.4), 513 (too large) and 6xx.
func (e *SIPError) Permanent() bool {
	switch {
	case e.Code == 408, e.Code == 480:
		return false
	case e.Code >= 400 && e.Code < 500, e.Code == 513, e.Code >= 600:
		return true
	}
	return false
}

func (l *sipLink) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	res, err := l.cli.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %v", ErrUnreachable, l.addr, err)
	}
	return res, nil
}

// message sends one MESSAGE to an account and returns the final answer,
// with the texts of its Warning headers (phones it did not reach).
func (l *sipLink) message(ctx context.Context, to ident.Account, ctype string, body []byte) ([]string, error) {
	req := sip.NewRequest(sip.MESSAGE, l.uri(to))
	from := &sip.FromHeader{Address: l.uri(l.account), Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: l.uri(to), Params: sip.NewParams()})
	ct := sip.ContentTypeHeader(ctype)
	req.AppendHeader(&ct)
	req.SetBody(body)
	l.prepare(req)
	res, err := l.do(ctx, req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 != 2 {
		return nil, &SIPError{Code: res.StatusCode, Reason: res.Reason}
	}
	return warnings(res), nil
}
