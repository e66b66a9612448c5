package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/store"
)

// The node's own SIP path for the relay's hot path: a MESSAGE from a
// device of this cluster to an account of this cluster, and the node's
// MESSAGEs to devices with their answers. Everything else (REGISTER,
// calls, presence, federation, standard phones' digest, and any MESSAGE
// whose shape this path does not take) goes through sipgo as before.
//
// Why: relaying a MESSAGE through sipgo's parser, transaction layer and
// per-request objects cost about as much CPU as everything else the node
// does for it (README, "Messaging relay", where the time goes). Over TLS,
// a reliable transport, a non-INVITE transaction needs no retransmission
// timers (RFC 3261 §17.1.2.2, §17.2.2), so the server transaction is one
// answer written on the connection the request came on (§18.2.2), and the
// client transaction is one request and a wait for its final answer,
// matched by the branch of the node's Via (§17.1.3) on that connection.
//
// The checks are the same as on sipgo's path, in relayMessage: the device
// certificate from the handshake, From against it, the contact lists, the
// rate limit, and the copy durable (taken by the device, or stored)
// before the 200.

// directLimit is how long the node waits for a device's final answer to
// one of its MESSAGEs, as sipgo's client transactions do (Timer F, 64*T1).
const directLimit = 10 * time.Second

// errNoAnswer: a device's connection closed, or the device gave no final
// answer in time.
var errNoAnswer = errors.New("no final answer from the device")

// ids makes the node's branches, tags and Call-IDs: a random prefix per
// process and a counter, so they are unique (RFC 3261 §8.1.1.4, §8.1.1.7,
// §19.3) without a random read per message.
type ids struct {
	prefix string
	n      atomic.Uint64
}

func newIDs() *ids {
	var b [8]byte
	rand.Read(b[:])
	return &ids{prefix: hex.EncodeToString(b[:])}
}

func (g *ids) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// directMsg is a MESSAGE taken off the connection by the node's own path:
// what relayMessage needs, and what the answer copies (§8.2.6.2).
type directMsg struct {
	c     *peerConn
	cert  *x509.Certificate
	from  string // the From's account, "" when not of this domain
	to    ident.Account
	ctype string
	body  []byte
	echo  []string // the Via, From, Call-ID and CSeq lines, in order
	toLn  string   // the To line
	toTag bool     // the To has a tag already
}

// intercept is the listener's look at every framed message before sipgo
// gets it: a device's answer to one of the node's MESSAGEs, or a MESSAGE
// this path takes. It reports whether it took the message; lines are the
// message's start and header lines (frameLines) and body its body, both
// valid only during the call.
func (p *Proxy) intercept(c *peerConn, lines []string, body []byte) bool {
	if strings.HasPrefix(lines[0], "SIP/") {
		return c.answered(lines)
	}
	if !strings.HasPrefix(lines[0], "MESSAGE ") || c.cert == nil {
		return false
	}
	m, ok := p.parseDirect(c, lines)
	if !ok {
		return false
	}
	m.body = bytes.Clone(body)
	p.direct.Add(1)
	// Not on the connection's reader: it must go on reading, for the
	// answers to MESSAGEs this one may wait for. A runner, whose stack has
	// grown already, rather than a new goroutine (runners.go).
	p.runners.run(func() { p.relayDirect(m) })
	return true
}

// parseDirect reads the header lines this path needs. A MESSAGE in any
// shape it does not take on (folded lines, Route, Require, a recipient of
// another domain, a node of a federated cluster) is left to sipgo.
func (p *Proxy) parseDirect(c *peerConn, lines []string) (*directMsg, bool) {
	if p.cfg.Federation != nil {
		if _, err := federation.NodeDomain(c.cert); err == nil {
			return nil, false
		}
	}
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || parts[2] != "SIP/2.0" {
		return nil, false
	}
	var ru sip.Uri
	if err := sip.ParseUri(parts[1], &ru); err != nil {
		return nil, false
	}
	to, err := p.accountOf(ru)
	if err != nil {
		return nil, false
	}
	m := &directMsg{c: c, cert: c.cert, to: to, ctype: "text/plain", echo: make([]string, 0, 4)}
	var vias, froms, tos, callIDs, cseqs, ctypes int
	for _, l := range lines[1:] {
		if l[0] == ' ' || l[0] == '\t' {
			return nil, false
		}
		name, v, _ := strings.Cut(l, ":")
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimRight(name, " \t")) {
		case "via", "v":
			vias++
			m.echo = append(m.echo, l)
		case "from", "f":
			froms++
			m.echo = append(m.echo, l)
			var u sip.Uri
			params := sip.NewParams()
			if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
				return nil, false
			}
			if a, err := p.accountOf(u); err == nil {
				m.from = a.String()
			}
		case "to", "t":
			tos++
			m.toLn = l
			var u sip.Uri
			params := sip.NewParams()
			if _, err := sip.ParseAddressValue(v, &u, &params); err != nil {
				return nil, false
			}
			_, m.toTag = params.Get("tag")
		case "call-id", "i":
			callIDs++
			m.echo = append(m.echo, l)
		case "cseq":
			cseqs++
			m.echo = append(m.echo, l)
		case "content-type", "c":
			ctypes++
			m.ctype = v
		case "max-forwards":
			if v == "0" {
				return nil, false
			}
		case "route", "require", "proxy-require":
			return nil, false
		}
	}
	if vias == 0 || froms != 1 || tos != 1 || callIDs != 1 || cseqs != 1 || ctypes > 1 {
		return nil, false
	}
	return m, true
}

// relayDirect handles a MESSAGE taken by intercept and answers it.
func (p *Proxy) relayDirect(m *directMsg) {
	a := p.answerDirect(m)
	if _, err := m.c.Write(m.response(a, p.tags)); err != nil {
		p.log.Debug("sip respond failed", "err", err)
	}
	p.countAnswer(a.code)
}

func (p *Proxy) answerDirect(m *directMsg) reply {
	src := m.c.RemoteAddr().String()
	id, err := p.certIdentity(src, m.cert)
	if err != nil {
		return p.refusalAnswer(err)
	}
	if m.from != id.Account {
		return reply{code: 403, reason: "Forbidden: From is not the authenticated identity"}
	}
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	return p.relayMessage(ctx, id, m.to, m.ctype, m.body)
}

// response renders the answer to m (RFC 3261 §8.2.6): the request's Via,
// From, Call-ID and CSeq lines copied, its To with a tag added if it had
// none.
func (m *directMsg) response(a reply, tags *ids) []byte {
	n := 64 + len(m.toLn)
	for _, l := range m.echo {
		n += len(l) + 2
	}
	b := make([]byte, 0, n+64*len(a.hdrs))
	b = append(b, "SIP/2.0 "...)
	b = strconv.AppendInt(b, int64(a.code), 10)
	b = append(b, ' ')
	b = append(b, a.reason...)
	b = append(b, "\r\n"...)
	for _, l := range m.echo {
		b = append(b, l...)
		b = append(b, "\r\n"...)
	}
	b = append(b, m.toLn...)
	if !m.toTag {
		b = append(b, ";tag="...)
		b = append(b, tags.next()...)
	}
	b = append(b, "\r\n"...)
	for _, h := range a.hdrs {
		b = append(b, h.Name()...)
		b = append(b, ": "...)
		b = append(b, h.Value()...)
		b = append(b, "\r\n"...)
	}
	return append(b, "Content-Length: 0\r\n\r\n"...)
}

// answered takes a response to one of the node's own MESSAGEs on this
// connection, matched by its top Via's branch: the waiting sender gets
// its final status. Anything else goes on to sipgo.
func (c *peerConn) answered(lines []string) bool {
	parts := strings.SplitN(lines[0], " ", 3)
	if len(parts) < 2 {
		return false
	}
	code, err := strconv.Atoi(parts[1])
	if err != nil {
		return false
	}
	branch := ""
	for _, l := range lines[1:] {
		name, v, _ := strings.Cut(l, ":")
		if n := strings.TrimRight(name, " \t"); !strings.EqualFold(n, "via") && !strings.EqualFold(n, "v") {
			continue
		}
		if i := strings.IndexByte(v, ','); i >= 0 {
			v = v[:i] // the top one of several values
		}
		for _, param := range strings.Split(v, ";")[1:] {
			k, val, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(k), "branch") {
				branch = strings.TrimSpace(val)
			}
		}
		break
	}
	if branch == "" {
		return false
	}
	c.mu.Lock()
	w, ok := c.waiting[branch]
	if ok && code >= 200 {
		delete(c.waiting, branch)
	}
	c.mu.Unlock()
	if !ok {
		return false
	}
	if code >= 200 {
		w <- code
	}
	return true // a provisional answer: the final one follows
}

// await registers a MESSAGE's branch on the connection; the returned
// channel gets the final status, or 0 if the connection closes first.
func (c *peerConn) await(branch string) (chan int, bool) {
	ch := make(chan int, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	if c.waiting == nil {
		c.waiting = map[string]chan int{}
	}
	c.waiting[branch] = ch
	return ch, true
}

func (c *peerConn) unawait(branch string) {
	c.mu.Lock()
	delete(c.waiting, branch)
	if len(c.waiting) == 0 {
		c.waiting = nil // an idle connection holds no map
	}
	c.mu.Unlock()
}

// endWaits tells every MESSAGE waiting on a closing connection that no
// answer will come.
func (c *peerConn) endWaits() {
	c.mu.Lock()
	c.closed = true
	w := c.waiting
	c.waiting = nil
	c.mu.Unlock()
	for _, ch := range w {
		ch <- 0
	}
}

// conn is the established connection from addr, or nil.
func (l *peerListener) conn(addr string) *peerConn {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conns[addr]
}

// sendDirect writes a copy to the device on its connection c and waits
// for the device's final answer (RFC 3261 §17.1.2 over a reliable
// transport: no retransmission, Timer F as the bound).
func (p *Proxy) sendDirect(c *peerConn, b binding, d store.Delivery) (int, error) {
	branch := "z9hG4bK" + p.tags.next()
	ch, ok := c.await(branch)
	if !ok {
		return 0, fmt.Errorf("deliver to %s: %w", b.source, errNoAnswer)
	}
	defer c.unawait(branch)
	if _, err := c.Write(p.directRequest(b, d, branch, c.LocalAddr().String())); err != nil {
		return 0, fmt.Errorf("deliver to %s: %w", b.source, err)
	}
	t := timerPool.Get().(*time.Timer)
	t.Reset(directLimit)
	defer func() { t.Stop(); timerPool.Put(t) }()
	select {
	case code := <-ch:
		if code == 0 {
			return 0, fmt.Errorf("deliver to %s: connection closed: %w", b.source, errNoAnswer)
		}
		return code, nil
	case <-t.C:
		return 0, fmt.Errorf("deliver to %s: %w within %v", b.source, errNoAnswer, directLimit)
	case <-p.ctx.Done():
		return 0, p.ctx.Err()
	}
}

var timerPool = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// directRequest renders the node's MESSAGE carrying d to the device of b,
// with the header fields the sipgo path sends (send). sentBy is the
// address of the node's end of the connection: a phone that sends its
// answer to the Via's sent-by rather than back on the connection
// (belle-sip, linphone's stack, looks for a connection to it) finds this
// same one; rport asks for the answer to the connection's source port
// (RFC 3581).
func (p *Proxy) directRequest(b binding, d store.Delivery, branch, sentBy string) []byte {
	dom := p.cfg.Domain
	buf := make([]byte, 0, 512+len(d.Body))
	buf = append(buf, "MESSAGE "...)
	buf = append(buf, b.contact.String()...)
	buf = append(buf, " SIP/2.0\r\nVia: SIP/2.0/TLS "...)
	buf = append(buf, sentBy...)
	buf = append(buf, ";rport;branch="...)
	buf = append(buf, branch...)
	buf = append(buf, "\r\nMax-Forwards: 70\r\nFrom: <sip:"...)
	buf = appendAddr(buf, d.Sender, dom)
	buf = append(buf, ">;tag="...)
	buf = append(buf, p.tags.next()...)
	buf = append(buf, "\r\nTo: <sip:"...)
	buf = appendAddr(buf, d.Recipient, dom)
	buf = append(buf, ">\r\nCall-ID: "...)
	buf = append(buf, p.tags.next()...)
	buf = append(buf, '@')
	buf = append(buf, dom...)
	buf = append(buf, "\r\nCSeq: 1 MESSAGE\r\nP-Asserted-Identity: <sip:"...)
	buf = appendAddr(buf, d.Sender, dom)
	buf = append(buf, ";gr="...)
	buf = append(buf, d.SenderDevice...)
	buf = append(buf, ">\r\nDate: "...)
	buf = d.Created.UTC().AppendFormat(buf, time.RFC1123)
	buf = append(buf, "\r\nContent-Type: "...)
	buf = append(buf, d.ContentType...)
	buf = append(buf, "\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(len(d.Body)), 10)
	buf = append(buf, "\r\n\r\n"...)
	return append(buf, d.Body...)
}

// appendAddr appends user@host of account as the sipgo path names it
// (senderHost).
func appendAddr(buf []byte, account, domain string) []byte {
	buf = append(buf, user(account)...)
	buf = append(buf, '@')
	return append(buf, senderHost(account, domain)...)
}
