package dnszone

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"
)

// Sizes of UDP answers: without EDNS0, RFC 1035's 512 octets; with it, what
// the client offers but at most 1232 (the DNS flag day 2020 value that
// avoids IP fragmentation). Larger answers are truncated and the client
// retries over TCP (RFC 7766).
const (
	maxUDPSize = 1232
	minUDPSize = 512
)

// maxTCPConns bounds the TCP connections served at once.
const maxTCPConns = 1024

// Reply builds the zone's reply to query. udp selects truncation to the
// client's UDP size; over TCP the whole answer goes out.
func (z *Zone) Reply(query *dns.Msg, udp bool) *dns.Msg {
	return z.replyIn(z.view.Load(), query, udp)
}

func (z *Zone) replyIn(v *view, query *dns.Msg, udp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(query)
	m.RecursionAvailable = false
	m.Compress = true
	if len(query.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		return m
	}
	size := minUDPSize
	do := false
	if opt := query.IsEdns0(); opt != nil {
		// RFC 6891 §6.1.3: we speak EDNS version 0 only.
		if opt.Version() != 0 {
			m.SetRcode(query, dns.RcodeBadVers)
			m.SetEdns0(maxUDPSize, opt.Do())
			return m
		}
		do = opt.Do()
		size = max(minUDPSize, min(int(opt.UDPSize()), maxUDPSize))
		m.SetEdns0(maxUDPSize, do)
	}
	q := query.Question[0]
	name := strings.ToLower(q.Name)
	switch {
	case query.Opcode != dns.OpcodeQuery:
		m.Rcode = dns.RcodeNotImplemented
	case q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY, !dns.IsSubDomain(v.origin, name):
		// Authoritative only, no recursion: names outside the zone are
		// refused (RFC 8906 §3.1.6).
		m.Rcode = dns.RcodeRefused
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR:
		m.Rcode = dns.RcodeRefused
	default:
		v.answer(m, name, q.Qtype, do)
	}
	if udp {
		m.Truncate(size)
	}
	return m
}

// ServeDNS answers one query; it implements dns.Handler. Queries are not
// logged.
func (z *Zone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	w.WriteMsg(z.Reply(r, !tcp))
}

// Serve answers on the UDP socket pc and the TCP listener ln (either may
// be nil) until ctx ends.
func (z *Zone) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	var servers []*dns.Server
	var udp *net.UDPConn
	if pc != nil {
		if u, ok := pc.(*net.UDPConn); ok {
			udp = u
		} else {
			servers = append(servers, &dns.Server{PacketConn: pc, Handler: z, UDPSize: 4096})
		}
	}
	if ln != nil {
		// RFC 7766 §6.2.3: idle TCP connections are closed after a while,
		// and their number is capped so that holding connections open
		// cannot exhaust the process.
		ln = netutil.LimitListener(ln, maxTCPConns)
		servers = append(servers, &dns.Server{Listener: ln, Handler: z, ReadTimeout: 10 * time.Second,
			IdleTimeout: func() time.Duration { return 10 * time.Second }, MaxTCPQueries: 1000})
	}
	if len(servers) == 0 && udp == nil {
		return errors.New("dns: nothing to serve on")
	}
	errc := make(chan error, len(servers)+1)
	uctx, stopUDP := context.WithCancel(ctx)
	udpDone := make(chan struct{})
	if udp != nil {
		go func() {
			defer close(udpDone)
			if err := z.serveUDP(uctx, udp); err != nil {
				errc <- err
			}
		}()
	} else {
		close(udpDone)
	}
	var started sync.WaitGroup
	for _, s := range servers {
		started.Add(1)
		var once sync.Once
		s.NotifyStartedFunc = func() { once.Do(started.Done) }
		go func() {
			err := s.ActivateAndServe()
			once.Do(started.Done)
			errc <- err
		}()
	}
	// Shutdown refuses a server that has not started yet, which would then
	// run on: wait for every one to start (or fail) first.
	started.Wait()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range servers {
		s.Shutdown()
	}
	stopUDP()
	<-udpDone
	return err
}
