package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/metrics"
	"github.com/phonex/phonex/internal/store"
)

// Standard SIP phones get a port of their own. On the device port the TLS
// handshake requests a client certificate, and phones built on mbedTLS or
// OpenSSL (linphonec among them) then stop to ask their user for a
// certificate password before they register. On the phone port no
// certificate is requested (RFC 5246 §7.4.4: the server simply sends no
// CertificateRequest), so a request there can only be authenticated by
// digest: a connection without a certificate never passes the certificate
// check.

// ErrPhonesServing is returned when a second phone listener is added.
var ErrPhonesServing = errors.New("proxy: a phone listener is already set")

// AddPhoneListener makes Serve accept standard phones on ln as well, with
// the proxy's TLS configuration minus the certificate request. It must be
// called before Serve.
func (p *Proxy) AddPhoneListener(ln net.Listener) error {
	if p.phones != nil {
		return ErrPhonesServing
	}
	conf := p.cfg.TLS.Clone()
	conf.ClientAuth = tls.NoClientCert
	conf.ClientCAs = nil
	conf.VerifyPeerCertificate = nil
	p.phones = newPeerListener(ln, conf, p.cfg.Limits, !p.cfg.KeepTLS, p.log)
	p.phones.intercept = p.intercept
	p.cfg.Metrics.Connections(metrics.KindPhone, p.phones.count)
	return nil
}

// servePhones runs the phone listener, if any, until the proxy's context
// ends; sipgo's transport layer serves both listeners, so answers and
// deliveries find a phone's connection by its address like a device's.
func (p *Proxy) servePhones() {
	if p.phones == nil {
		return
	}
	go func() {
		<-p.ctx.Done()
		p.phones.Close()
	}()
	go func() {
		if err := p.srv.ServeTLS(p.phones); err != nil && p.ctx.Err() == nil {
			p.log.Error("sip phone listener stopped", "err", err)
		}
	}()
}

// keep spares the connection from addr, on either listener, the idle
// timeout until t.
func (p *Proxy) keep(addr string, t time.Time) {
	p.ln.keep(addr, t)
	if p.phones != nil {
		p.phones.keep(addr, t)
	}
}

// PhoneAddr is the phone listener's address, or nil.
func (p *Proxy) PhoneAddr() net.Addr {
	if p.phones == nil {
		return nil
	}
	return p.phones.Addr()
}

// notForPhones names, in Warning headers of the 200 (RFC 3261 §20.43,
// code 399: miscellaneous), the recipient's standard phones an encrypted
// message did not go to, so the sender can say so instead of leaving the
// recipient's phone silently out.
func (p *Proxy) notForPhones(ctx context.Context, rcpt store.Account) []sip.Header {
	ds, err := p.cfg.Store.Devices(ctx, rcpt.ID)
	if err != nil {
		p.log.Error("list the recipient's phones", "err", err)
		return []sip.Header{sip.NewHeader("Warning", fmt.Sprintf(`399 %s "%s"`, p.cfg.Domain, NotForPhonesWarning(rcpt.Name, "")))}
	}
	var out []sip.Header
	for _, d := range ds {
		if d.Suite == "sip" && d.Status == store.StatusActive {
			out = append(out, sip.NewHeader("Warning", fmt.Sprintf(`399 %s "%s"`, p.cfg.Domain, NotForPhonesWarning(rcpt.Name, d.Name))))
		}
	}
	return out
}

// NotForPhonesWarning is the text of the Warning for a phone an encrypted
// message did not go to; device "" stands for all of them.
func NotForPhonesWarning(account, device string) string {
	who := account + "/" + device
	if device == "" {
		who = "the standard phones of " + account
	}
	return "not delivered to " + who + ": cannot receive encrypted messages"
}
