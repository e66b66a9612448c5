// Command presence measures phonexd's presence fan-out over TLS: watcher
// devices on their own TLS connections (device certificates issued by the
// node's CA, registered, subscribed to a contact's presence), one PUBLISH
// by the contact, and the time until the NOTIFY reaches the last watcher;
// then the node's memory per subscription with 10,000 subscriptions.
// bench/presence.sh starts the node and runs it.
//
// Devices, accounts and contacts are written straight into the node's
// store (the admin commands do the same while it serves); the load is
// then only SIP over TLS.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/phonex/phonex/bench/internal/nodeprobe"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/server"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/store/sqlite"
)

func main() {
	sipAddr := flag.String("sip", "", "SIP address of the running phonexd")
	data := flag.String("data", "", "its data directory")
	pid := flag.Int("pid", 0, "its process id")
	rounds := flag.Int("rounds", 5, "PUBLISHes per fan-out measure (median)")
	kam := flag.String("kamailio", "", "instead: publish to this Kamailio (UDP host:port) and read the -sipp-log files")
	var logs multi
	flag.Var(&logs, "sipp-log", "TARGET=PATH:WATCHERS, the log of the SIPp process watching TARGET (repeatable)")
	flag.Parse()
	var err error
	if *kam != "" {
		var ls []sippLog
		if ls, err = parseSIPpLogs(logs); err == nil {
			err = kamailioFanout(*kam, ls, *rounds)
		}
	} else {
		err = run(*sipAddr, *data, *pid, *rounds)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "presence:", err)
		os.Exit(1)
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// The subscriptions: every watcher watches "star" and three more accounts;
// the first 1000 watch "half" and a fourth: 2000*4 + 1000*2 = 10,000.
const (
	watchers = 2000
	halfN    = 1000
	perIP    = 100
)

func run(sipAddr, data string, pid, rounds int) error {
	ctx := context.Background()
	cfg, err := server.LoadConfig(data)
	if err != nil {
		return err
	}
	authority, err := ca.Load(data)
	if err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, filepath.Join(data, server.DBFile))
	if err != nil {
		return err
	}
	defer st.Close()
	dom := cfg.Domain
	fmt.Fprintf(os.Stderr, "making %d watcher devices...\n", watchers)
	fan, err := makeAccount(ctx, st, "fan@"+dom)
	if err != nil {
		return err
	}
	targets := []string{"star", "half", "t1", "t2", "t3", "t4"}
	for _, t := range targets {
		a, err := makeAccount(ctx, st, t+"@"+dom)
		if err != nil {
			return err
		}
		for _, pair := range [][2]store.Account{{fan, a}, {a, fan}} {
			if err := st.AddContact(ctx, pair[0].ID, pair[1].Name, time.Now()); err != nil {
				return err
			}
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(authority.Cert)
	host := sipAddr[:strings.LastIndex(sipAddr, ":")]
	dial := func(acct store.Account, name string, i int) (*peer, error) {
		cert, err := makeDevice(ctx, st, authority, acct, name)
		if err != nil {
			return nil, err
		}
		from := &net.TCPAddr{IP: net.IPv4(127, 0, 2, byte(1+i/perIP))}
		c, err := tls.DialWithDialer(&net.Dialer{LocalAddr: from, Timeout: 10 * time.Second}, "tcp", sipAddr,
			&tls.Config{RootCAs: pool, ServerName: host, Certificates: []tls.Certificate{cert}})
		if err != nil {
			return nil, err
		}
		p := newPeer(c, acct.Name, name)
		return p, p.register()
	}
	var ws []*peer
	defer func() {
		for _, w := range ws {
			w.c.Close()
		}
	}()
	for i := range watchers {
		w, err := dial(fan, fmt.Sprintf("w%d", i), i)
		if err != nil {
			return fmt.Errorf("watcher %d: %w", i, err)
		}
		ws = append(ws, w)
	}
	star, err := dial(mustAccount(ctx, st, "star@"+dom), "p", watchers)
	if err != nil {
		return err
	}
	half, err := dial(mustAccount(ctx, st, "half@"+dom), "p", watchers+1)
	if err != nil {
		return err
	}
	for _, p := range []*peer{star, half} {
		if err := p.publish("online", "start"); err != nil {
			return err
		}
	}
	time.Sleep(2 * time.Second)
	before, err := nodeprobe.RSS(pid)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "subscribing 10,000...")
	subs := 0
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	jobs := make(chan *peer)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for w := range jobs {
				ts := []string{"star", "t1", "t2", "t3"}
				if w.index < halfN {
					ts = append(ts, "half", "t4")
				}
				for _, t := range ts {
					err := w.subscribe(t+"@"+dom, 3600)
					mu.Lock()
					if err != nil && firstErr == nil {
						firstErr = err
					}
					if err == nil {
						subs++
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i, w := range ws {
		w.index = i
		jobs <- w
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	// Every subscription has had its first NOTIFY answered; the collector
	// and the transactions' timers have had the time Kamailio gets too.
	time.Sleep(8 * time.Second)
	after, err := nodeprobe.RSS(pid)
	if err != nil {
		return err
	}
	fmt.Printf("| phonexd: memory per subscription (%d subscriptions of %d registered TLS watcher devices, RSS growth) | %.0f B |\n",
		subs, watchers, float64(after-before)/float64(subs))

	for _, tc := range []struct {
		p *peer
		n int
	}{{half, halfN}, {star, watchers}} {
		var times []time.Duration
		for r := range rounds {
			note := fmt.Sprintf("round-%d-%d", tc.n, r)
			for _, w := range ws[:tc.n] {
				w.expect(note)
			}
			start := time.Now()
			if err := tc.p.publish([]string{"away", "busy"}[r%2], note); err != nil {
				return err
			}
			var last time.Time
			for _, w := range ws[:tc.n] {
				at, err := w.wait(note, 30*time.Second)
				if err != nil {
					return fmt.Errorf("round %d: %w", r, err)
				}
				if at.After(last) {
					last = at
				}
			}
			times = append(times, last.Sub(start))
			time.Sleep(500 * time.Millisecond)
		}
		fmt.Fprintf(os.Stderr, "%d watchers, rounds: %v\n", tc.n, times)
		slices.Sort(times)
		med := times[len(times)/2]
		fmt.Printf("| phonexd: one PUBLISH to the NOTIFY at the last of %d watchers over TLS (median of %d; min %v, max %v) | %.1f ms (%.0f NOTIFYs/s) |\n",
			tc.n, rounds, times[0].Round(100*time.Microsecond), times[len(times)-1].Round(100*time.Microsecond),
			float64(med)/float64(time.Millisecond), float64(tc.n)/med.Seconds())
	}
	return nil
}

func mustAccount(ctx context.Context, st store.Store, name string) store.Account {
	a, _ := st.Account(ctx, name)
	return a
}

func makeAccount(ctx context.Context, st store.Store, name string) (store.Account, error) {
	a, err := st.CreateAccount(ctx, name, time.Now())
	if errors.Is(err, store.ErrExists) {
		return st.Account(ctx, name)
	}
	if err != nil {
		return a, err
	}
	return a, st.SetAccountStatus(ctx, name, store.StatusActive)
}

// makeDevice issues a device's certificates with the node's CA from a CSR,
// as enrollment does, and records the device.
func makeDevice(ctx context.Context, st store.Store, authority *ca.CA, acct store.Account, name string) (tls.Certificate, error) {
	a, err := ident.ParseAccount(acct.Name)
	if err != nil {
		return tls.Certificate{}, err
	}
	dev := ident.Device{Account: a, Name: name}
	k, err := keys.Generate(keys.SuiteEC, 0)
	if err != nil {
		return tls.Certificate{}, err
	}
	csr, _ := k.CSR(dev)
	pub, sig, _ := k.KexProof(dev)
	is, err := authority.IssueDevice(csr, dev, pub, sig, 24*time.Hour, time.Now())
	if err != nil {
		return tls.Certificate{}, err
	}
	h := make([]byte, 16)
	rand.Read(h)
	if _, err := st.CreateDevice(ctx, store.Device{AccountID: acct.ID, Name: name, Handle: hex.EncodeToString(h), Suite: string(keys.SuiteEC),
		Serial: ca.Serial(is.Sign), Cert: is.Sign.Raw, KexCert: is.Kex.Raw, NotAfter: is.Sign.NotAfter, Status: store.StatusActive,
		SealedOPRF: []byte{}, Created: time.Now()}); err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{is.Sign.Raw}, PrivateKey: k.Sign}, nil
}

// peer is one device's SIP over TLS connection, spoken raw: requests and
// their answers, NOTIFYs answered 200 at once and their arrival noted.
type peer struct {
	c       net.Conn
	account string
	name    string
	index   int

	wmu     sync.Mutex
	cseq    int
	mu      sync.Mutex
	answers map[string]chan string // by Call-ID
	want    string
	got     chan time.Time
}

func newPeer(c net.Conn, account, name string) *peer {
	p := &peer{c: c, account: account, name: name, answers: map[string]chan string{}, got: make(chan time.Time, 1)}
	go p.read()
	return p
}

// header returns the value of the first header named name or short in a
// message head, without regular expressions: the load generator must cost
// the machine as little as it can, since it shares it with the node.
func header(head, name, short string) string {
	for rest := head; ; {
		i := strings.Index(rest, "\r\n")
		if i < 0 {
			return ""
		}
		rest = rest[i+2:]
		colon := strings.IndexByte(rest, ':')
		end := strings.Index(rest, "\r\n")
		if colon < 0 || end < 0 || colon > end {
			continue
		}
		n := strings.TrimSpace(rest[:colon])
		if strings.EqualFold(n, name) || (short != "" && strings.EqualFold(n, short)) {
			return strings.TrimSpace(rest[colon+1 : end])
		}
	}
}

// note is the text of the first <note> of a document.
func note(body []byte) (string, bool) {
	b := string(body)
	i := strings.Index(b, "<note>")
	if i < 0 {
		return "", false
	}
	b = b[i+len("<note>"):]
	j := strings.Index(b, "</note>")
	if j < 0 {
		return "", false
	}
	return b[:j], true
}

func (p *peer) read() {
	r := bufio.NewReaderSize(p.c, 16<<10)
	for {
		var head strings.Builder
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if head.Len() == 0 && strings.TrimSpace(l) == "" {
				continue // keep-alive
			}
			head.WriteString(l)
			if l == "\r\n" {
				break
			}
		}
		h := head.String()
		var body []byte
		if v := header(h, "Content-Length", "l"); v != "" {
			n, _ := strconv.Atoi(v)
			body = make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				return
			}
		}
		at := time.Now()
		callID := header(h, "Call-ID", "i")
		if strings.HasPrefix(h, "SIP/2.0 ") {
			p.mu.Lock()
			ch := p.answers[callID]
			p.mu.Unlock()
			if ch != nil {
				select {
				case ch <- h:
				default:
				}
			}
			continue
		}
		if strings.HasPrefix(h, "NOTIFY ") {
			p.answer(h)
			if n, ok := note(body); ok {
				p.mu.Lock()
				hit := p.want != "" && n == p.want
				if hit {
					p.want = ""
				}
				p.mu.Unlock()
				if hit {
					p.got <- at
				}
			}
		}
	}
}

// answer replies 200 to a request, with its dialog headers (RFC 3261 §8.2.6).
func (p *peer) answer(req string) {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, l := range strings.Split(req, "\r\n")[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "v", "from", "f", "to", "t", "call-id", "i", "cseq":
			b.WriteString(l + "\r\n")
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	p.write(b.String())
}

func (p *peer) write(s string) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_, err := p.c.Write([]byte(s))
	return err
}

// do sends a request and waits for its final answer.
func (p *peer) do(method, ruri, to, extra, body string) (string, error) {
	p.wmu.Lock()
	p.cseq++
	cseq := p.cseq
	p.wmu.Unlock()
	callID := fmt.Sprintf("%s-%s-%d", p.name, strings.ToLower(method), cseq)
	ch := make(chan string, 4)
	p.mu.Lock()
	p.answers[callID] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.answers, callID)
		p.mu.Unlock()
	}()
	user, dom, _ := strings.Cut(p.account, "@")
	msg := fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK%s\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <%s>\r\n"+
		"Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContact: <sip:%s@%s;transport=tls>\r\n%sContent-Length: %d\r\n\r\n%s",
		method, ruri, p.c.LocalAddr(), callID, user, dom, p.name, to, callID, cseq, method, user, dom, extra, len(body), body)
	if err := p.write(msg); err != nil {
		return "", err
	}
	for {
		select {
		case res := <-ch:
			if strings.HasPrefix(res, "SIP/2.0 1") {
				continue
			}
			return res, nil
		case <-time.After(30 * time.Second):
			return "", fmt.Errorf("%s %s: no answer", method, ruri)
		}
	}
}

func ok(res string, err error, what string) error {
	if err != nil {
		return err
	}
	if !strings.HasPrefix(res, "SIP/2.0 200") {
		return fmt.Errorf("%s: %s", what, strings.SplitN(res, "\r\n", 2)[0])
	}
	return nil
}

func (p *peer) register() error {
	_, dom, _ := strings.Cut(p.account, "@")
	res, err := p.do("REGISTER", "sip:"+dom, "sip:"+p.account, "Expires: 3600\r\n", "")
	return ok(res, err, "REGISTER")
}

func (p *peer) subscribe(target string, expires int) error {
	res, err := p.do("SUBSCRIBE", "sip:"+target, "sip:"+target,
		fmt.Sprintf("Event: presence\r\nAccept: application/pidf+xml\r\nExpires: %d\r\n", expires), "")
	return ok(res, err, "SUBSCRIBE "+target)
}

func (p *peer) publish(state, note string) error {
	doc := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:px="urn:phonex:params:xml:ns:pidf" entity="pres:%s">`+
		`<tuple id="d-%s"><status><basic>open</basic></status><px:device>%s</px:device><px:state>%s</px:state><note>%s</note></tuple></presence>`,
		p.account, p.name, p.name, state, note)
	res, err := p.do("PUBLISH", "sip:"+p.account, "sip:"+p.account, "Event: presence\r\nExpires: 3600\r\nContent-Type: application/pidf+xml\r\n", doc)
	return ok(res, err, "PUBLISH")
}

// expect arms the watcher for the NOTIFY carrying note.
func (p *peer) expect(note string) {
	p.mu.Lock()
	p.want = note
	p.mu.Unlock()
	select {
	case <-p.got:
	default:
	}
}

func (p *peer) wait(note string, limit time.Duration) (time.Time, error) {
	select {
	case at := <-p.got:
		return at, nil
	case <-time.After(limit):
		return time.Time{}, fmt.Errorf("%s/%s: no NOTIFY with %q", p.account, p.name, note)
	}
}
