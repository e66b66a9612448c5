package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"

	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/store"
)

// Messages between clusters. A MESSAGE from a local device to an account
// of a peer domain is checked on the sender's side (the sender lists the
// recipient; rate limit; the peer's queue quota), queued durably, answered
// 200, and forwarded by the queue over SIP/TLS to the peer's node with the
// sending device's certificate and the queue id. A MESSAGE forwarded by a
// peer node (mutual TLS with its node certificate, checked against the CA
// pinned for its domain) is checked on the recipient's side (the device
// certificate against the same pin, the recipient lists the sender),
// stored for the recipient's devices and answered 200 only once committed,
// so the sender's node forgets its copy only then.

// directWait bounds the at-once forward of a message to a peer before the
// sender is answered; past it the message waits in the queue.
const directWait = 5 * time.Second

// peerClients are the SIP clients dialling peers, by domain.
type peerClients struct {
	mu sync.Mutex
	m  map[string]peerClient
}

type peerClient struct {
	key string // pin and address it was made for
	ua  *sipgo.UserAgent
	cli *sipgo.Client
}

// fedState is the proxy's side of federation: the clients dialling peers
// and the presence subscriptions held at peers for devices.
type fedState struct {
	clients peerClients
	subs    peerSubs // federation_presence.go
}

func (p *Proxy) peerClient(peer store.Peer) (*sipgo.Client, error) {
	pc := &p.fed.clients
	key := peer.CASHA256 + " " + peer.SIP
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.m == nil {
		pc.m = map[string]peerClient{}
	}
	if c, ok := pc.m[peer.Domain]; ok {
		if c.key == key {
			return c.cli, nil
		}
		c.ua.Close()
	}
	fed := p.cfg.Federation
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("phonexd"), sipgo.WithUserAgentHostname(p.cfg.Domain),
		sipgo.WithUserAgenTLSConfig(fed.Pins.ClientTLS(peer.Domain, fed.Node)))
	if err != nil {
		return nil, err
	}
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname(p.cfg.Domain))
	if err != nil {
		ua.Close()
		return nil, err
	}
	// The peer sends the in-dialog requests of calls this node forwarded
	// to it back over the connection this node dialled.
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		ua.Close()
		return nil, err
	}
	p.router.registerPeer(srv) // federation_call.go
	pc.m[peer.Domain] = peerClient{key: key, ua: ua, cli: cli}
	return cli, nil
}

// startFederation hands the queue its sender and resumes it.
func (p *Proxy) startFederation(ctx context.Context) {
	fed := p.cfg.Federation
	if fed == nil {
		return
	}
	fed.Queue.Send = p.sendRemote
	fed.Queue.Start(ctx)
	go p.fed.subs.sweep(ctx)
	go func() {
		<-ctx.Done()
		pc := &p.fed.clients
		pc.mu.Lock()
		for _, c := range pc.m {
			c.ua.Close()
		}
		clear(pc.m)
		pc.mu.Unlock()
	}()
}

// sendRemote forwards one queued message to its peer's node.
func (p *Proxy) sendRemote(ctx context.Context, peer store.Peer, o store.Outbound) (int, string, error) {
	cli, err := p.peerClient(peer)
	if err != nil {
		return 0, "", err
	}
	rcpt := sip.Uri{Scheme: "sip", User: user(o.Recipient), Host: peer.Domain}
	req := sip.NewRequest(sip.MESSAGE, rcpt)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user(o.Sender), Host: p.cfg.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: rcpt, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader(federation.HeaderDeviceCert, federation.EncodeCert(o.SenderCert)))
	req.AppendHeader(sip.NewHeader(federation.HeaderOriginID, strconv.FormatInt(o.ID, 10)))
	req.AppendHeader(sip.NewHeader("Date", o.Created.UTC().Format(time.RFC1123)))
	ct := sip.ContentTypeHeader(o.ContentType)
	req.AppendHeader(&ct)
	req.SetBody(o.Body)
	req.SetTransport("TLS")
	req.SetDestination(peer.SIP)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := cli.Do(ctx, req)
	if err != nil {
		return 0, "", err
	}
	return res.StatusCode, res.Reason, nil
}

// toPeer takes a MESSAGE from a local device for an account of a peer
// domain; false when the recipient is not of a peer domain.
func (p *Proxy) toPeer(ctx context.Context, req *sip.Request, tx sip.ServerTransaction, id *Identity) bool {
	fed := p.cfg.Federation
	if fed == nil {
		return false
	}
	to, err := ident.ParseAccount(req.Recipient.User + "@" + strings.ToLower(req.Recipient.Host))
	if err != nil {
		return false
	}
	if ok, err := fed.Known(ctx, to.Domain); err != nil {
		p.internal(tx, req, err)
		return true
	} else if !ok {
		return false
	}
	cert := p.ln.peer(req.Source())
	if cert == nil {
		p.respond(tx, req, 403, "Forbidden: only PhoneX devices reach other clusters")
		return true
	}
	body := req.Body()
	switch {
	case len(body) == 0:
		p.respond(tx, req, 400, "Empty message")
		return true
	case len(body) > p.cfg.MaxBody:
		p.respond(tx, req, 513, "Message Too Large")
		return true
	}
	// The sender's side of the contact gate; the recipient's side is the
	// peer's to check.
	listed, err := p.cfg.Store.HasContact(ctx, id.Account, to.String())
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	if !listed {
		p.respond(tx, req, 403, "Not allowed: you have not added the recipient to your contacts")
		return true
	}
	if wait := p.limits.take(id.Account, time.Now()); wait > 0 {
		p.respond(tx, req, 503, "Rate limit exceeded", sip.NewHeader("Retry-After", strconv.Itoa(int(wait.Seconds())+1)))
		return true
	}
	ctype := "text/plain"
	if h := req.ContentType(); h != nil {
		ctype = h.Value()
	}
	qid, err := p.cfg.Store.QueueOutbound(ctx, store.Outbound{Domain: to.Domain, SenderCert: cert.Raw, Message: store.Message{
		Sender: id.Account, SenderDevice: id.Device, Recipient: to.String(), ContentType: ctype, Body: body, Created: time.Now()}}, p.cfg.MaxStored)
	if errors.Is(err, store.ErrStorageFull) {
		p.respond(tx, req, 480, "Too many messages waiting for "+to.Domain, sip.NewHeader("Retry-After", "60"))
		return true
	}
	if err != nil {
		p.internal(tx, req, err)
		return true
	}
	// Stored: the message is safe. Forwarded at once when the peer's queue
	// is idle, so a refusal reaches the sender as within one cluster;
	// otherwise, or with no answer, the queue delivers it later.
	dctx, dcancel := context.WithTimeout(ctx, directWait)
	code, reason, tried := fed.Queue.Direct(dctx, to.Domain, qid)
	dcancel()
	if tried && code >= 300 {
		p.respond(tx, req, code, reason)
		return true
	}
	p.respond(tx, req, 200, "OK")
	p.copyToOwnDevices(ctx, id, store.Message{Sender: id.Account, SenderDevice: id.Device, Recipient: to.String(),
		ContentType: ctype, Body: body, Created: time.Now()})
	return true
}

// copyToOwnDevices stores a copy of a message sent to another cluster for
// the sender's other devices, so the conversation shows on all of them as
// within one cluster. The message itself is already queued; a copy that
// cannot be stored is logged, not a failure of the send.
func (p *Proxy) copyToOwnDevices(ctx context.Context, id *Identity, m store.Message) {
	devs, err := p.cfg.Store.ActiveDevices(ctx, id.AccountID)
	if err != nil {
		p.log.Error("copies for the sender's devices", "err", err)
		return
	}
	var own []store.Target
	for _, d := range devs {
		if d.ID != id.DeviceID && d.Suite != "sip" {
			own = append(own, store.Target{DeviceID: d.ID, AccountID: id.AccountID})
		}
	}
	if len(own) == 0 {
		return
	}
	if _, err := p.cfg.Store.EnqueueMessage(ctx, m, own, p.cfg.MaxStored); err != nil {
		p.log.Warn("copies for the sender's devices not stored", "err", err)
		return
	}
	for _, t := range own {
		p.kick(t.DeviceID)
	}
}

// fromNode reports, cheaply, whether req came with a node certificate
// (no device identity in it) while federation is on: only then is the
// request checked as a peer's.
func (p *Proxy) fromNode(req *sip.Request) bool {
	if p.cfg.Federation == nil || p.ln == nil {
		return false
	}
	_, err := federation.NodeDomain(p.ln.peer(req.Source()))
	return err == nil
}

// peerNode returns the peer domain whose node sent req, or "" when no node
// certificate came with it (a device, a phone). A node certificate that is
// not pinned is refused here (true: answered).
func (p *Proxy) peerNode(ctx context.Context, req *sip.Request, tx sip.ServerTransaction) (string, bool) {
	fed := p.cfg.Federation
	if fed == nil || p.ln == nil {
		return "", false
	}
	cert := p.ln.peer(req.Source())
	if _, err := federation.NodeDomain(cert); err != nil {
		return "", false
	}
	domain, err := fed.Pins.VerifyNode(ctx, []*x509.Certificate{cert}, x509.ExtKeyUsageClientAuth)
	switch {
	case errors.Is(err, federation.ErrUnknownPeer):
		p.respond(tx, req, 403, "Forbidden: no federation with "+domain)
		return "", true
	case errors.Is(err, federation.ErrCAChanged):
		// Refused until an operator accepts the CA; the sending node keeps
		// its messages meanwhile.
		p.respond(tx, req, 503, "Service Unavailable: node certificate not issued by the CA pinned for "+domain, sip.NewHeader("Retry-After", "300"))
		return "", true
	case err != nil:
		p.internal(tx, req, err)
		return "", true
	}
	return domain, false
}

// fromPeer handles a MESSAGE forwarded by a peer's node; false when req
// did not come from a node.
func (p *Proxy) fromPeer(req *sip.Request, tx sip.ServerTransaction) bool {
	if !p.fromNode(req) {
		return false
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	domain, answered := p.peerNode(ctx, req, tx)
	if answered {
		return true
	}
	if domain == "" {
		return false
	}
	code, reason, targets := p.acceptForwarded(ctx, domain, req)
	if code == 480 {
		p.respond(tx, req, code, reason, sip.NewHeader("Retry-After", "60"))
	} else {
		p.respond(tx, req, code, reason)
	}
	for _, t := range targets {
		p.kick(t.DeviceID)
	}
	return true
}

func (p *Proxy) acceptForwarded(ctx context.Context, domain string, req *sip.Request) (int, string, []store.Target) {
	from := req.From()
	if from == nil {
		return 400, "Missing From", nil
	}
	sender, err := ident.ParseAccount(from.Address.User + "@" + strings.ToLower(from.Address.Host))
	if err != nil || sender.Domain != domain {
		return 403, "Forbidden: a node speaks only for its own domain", nil
	}
	rcpt, err := p.accountOf(req.Recipient)
	if err != nil {
		return 404, "Not Found", nil
	}
	var certV, idV string
	if h := req.GetHeader(federation.HeaderDeviceCert); h != nil {
		certV = h.Value()
	}
	if h := req.GetHeader(federation.HeaderOriginID); h != nil {
		idV = h.Value()
	}
	der, err := federation.ParseCert(certV)
	if err != nil {
		return 400, "Bad Request: " + err.Error(), nil
	}
	originID, err := federation.ParseOriginID(idV)
	if err != nil {
		return 400, "Bad Request: " + err.Error(), nil
	}
	dev, _, err := p.cfg.Federation.Pins.VerifyDevice(ctx, domain, der)
	if err != nil {
		return 403, "Forbidden: the sending device's certificate is not valid for " + domain, nil
	}
	if dev.Account != sender {
		return 403, "Forbidden: the device certificate names another account", nil
	}
	body := req.Body()
	switch {
	case len(body) == 0:
		return 400, "Empty message", nil
	case len(body) > p.cfg.MaxBody:
		return 513, "Message Too Large", nil
	}
	ctype := "text/plain"
	if h := req.ContentType(); h != nil {
		ctype = h.Value()
	}
	a, err := p.cfg.Store.Account(ctx, rcpt.String())
	if errors.Is(err, store.ErrNotFound) {
		return 404, "Not Found", nil
	}
	if err != nil {
		p.log.Error("forwarded message", "err", err)
		return 500, "Server Internal Error", nil
	}
	switch a.Status {
	case store.StatusPending:
		return 404, "Not Found", nil
	case store.StatusDisabled:
		return 480, "Temporarily Unavailable", nil
	}
	// The recipient's side of the contact gate.
	ok, err := p.cfg.Store.HasContact(ctx, a.Name, sender.String())
	if err != nil {
		p.log.Error("forwarded message", "err", err)
		return 500, "Server Internal Error", nil
	}
	if !ok {
		return 403, "Not allowed: you are not on the recipient's contact list", nil
	}
	devs, err := p.cfg.Store.ActiveDevices(ctx, a.ID)
	if err != nil {
		p.log.Error("forwarded message", "err", err)
		return 500, "Server Internal Error", nil
	}
	envelope := strings.HasPrefix(ctype, EnvelopeType)
	var targets []store.Target
	for _, d := range devs {
		if d.Suite == "sip" && envelope {
			continue
		}
		targets = append(targets, store.Target{DeviceID: d.ID, AccountID: a.ID})
	}
	if len(targets) == 0 {
		return 480, "Temporarily Unavailable: the recipient has no device that can take it", nil
	}
	_, err = p.cfg.Store.AcceptForwarded(ctx, domain, originID, store.Message{Sender: sender.String(), SenderDevice: dev.Name,
		Recipient: a.Name, ContentType: ctype, Body: body, Created: time.Now()}, targets, p.cfg.MaxStored)
	switch {
	case errors.Is(err, store.ErrDuplicate):
		return 200, "OK", nil
	case errors.Is(err, store.ErrStorageFull):
		return 480, "Recipient storage full", nil
	case err != nil:
		p.log.Error("store a forwarded message", "err", err)
		return 500, "Server Internal Error", nil
	}
	return 200, "OK", targets
}

// senderHost is the domain of a stored message's sender: this cluster's, or a
// peer's for a forwarded message.
func senderHost(account, own string) string {
	if _, d, ok := strings.Cut(account, "@"); ok && d != "" {
		return d
	}
	return own
}
