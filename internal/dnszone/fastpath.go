package dnszone

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Answers are signed ahead of time, so a reply depends only on the
// question, the DO bit and the UDP size: the UDP path keeps each reply
// packed, per snapshot of the zone, and answers a repeated question by
// copying it and patching the ID, the RD and CD bits and the case of the
// name. Anything unusual (EDNS options, other opcodes, malformed input)
// takes the general path through Reply.

// maxCached bounds the packed replies kept per snapshot, so random names
// cannot grow memory without end.
const maxCached = 1 << 18

type cacheKey struct {
	name  string // the question name in wire format, lower case
	qtype uint16
	edns  bool
	do    bool
	size  uint16 // the client's UDP size after clamping
}

type replyCache struct {
	m sync.Map // cacheKey → []byte
	n atomic.Int64
}

func (c *replyCache) get(k cacheKey) []byte {
	if v, ok := c.m.Load(k); ok {
		return v.([]byte)
	}
	return nil
}

func (c *replyCache) put(k cacheKey, b []byte) {
	if c.n.Load() >= maxCached {
		return
	}
	if _, loaded := c.m.LoadOrStore(k, b); !loaded {
		c.n.Add(1)
	}
}

// parseFast reads a plain query: one question of class IN, no answer or
// authority records, at most an OPT record of EDNS version 0 without
// options. It returns the cache key and the end of the question.
func parseFast(b []byte, name []byte) (k cacheKey, qend int, ok bool) {
	if len(b) < 12 || b[2]&0x80 != 0 || (b[2]>>3)&0xf != dns.OpcodeQuery {
		return k, 0, false
	}
	if binary.BigEndian.Uint16(b[4:]) != 1 || binary.BigEndian.Uint16(b[6:]) != 0 || binary.BigEndian.Uint16(b[8:]) != 0 {
		return k, 0, false
	}
	ar := binary.BigEndian.Uint16(b[10:])
	if ar > 1 {
		return k, 0, false
	}
	off := 12
	name = name[:0]
	for {
		if off >= len(b) {
			return k, 0, false
		}
		l := int(b[off])
		if l == 0 {
			name = append(name, 0)
			off++
			break
		}
		if l > 63 || off+1+l > len(b) || len(name)+1+l > 254 {
			return k, 0, false // compression pointers or bad lengths: the general path decides
		}
		name = append(name, byte(l))
		for _, c := range b[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			name = append(name, c)
		}
		off += 1 + l
	}
	if off+4 > len(b) {
		return k, 0, false
	}
	k.qtype = binary.BigEndian.Uint16(b[off:])
	if binary.BigEndian.Uint16(b[off+2:]) != dns.ClassINET {
		return k, 0, false
	}
	qend = off + 4
	k.size = minUDPSize
	if ar == 1 {
		// RFC 6891 §6.1.2: root owner, type OPT, class = UDP size, TTL =
		// extended RCODE, version, flags (DO is the top bit), RDLEN.
		o := b[qend:]
		if len(o) != 11 || o[0] != 0 || binary.BigEndian.Uint16(o[1:]) != dns.TypeOPT || o[6] != 0 || binary.BigEndian.Uint16(o[9:]) != 0 {
			return k, 0, false
		}
		k.edns = true
		k.do = o[7]&0x80 != 0
		k.size = uint16(max(minUDPSize, min(int(binary.BigEndian.Uint16(o[3:])), maxUDPSize)))
	} else if qend != len(b) {
		return k, 0, false
	}
	switch k.qtype {
	case dns.TypeAXFR, dns.TypeIXFR, dns.TypeANY, dns.TypeOPT:
		return k, 0, false
	}
	k.name = string(name)
	return k, qend, true
}

// serveUDP answers on pc with one reader per CPU until ctx ends.
func (z *Zone) serveUDP(ctx context.Context, pc *net.UDPConn) error {
	go func() { <-ctx.Done(); pc.Close() }()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := z.readLoop(pc); err != nil && ctx.Err() == nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// batchSize is how many datagrams one recvmmsg/sendmmsg call moves: a
// syscall per batch instead of per query is most of a server's speed.
const batchSize = 32

// batchConn is what ipv4.PacketConn and ipv6.PacketConn share.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

func (z *Zone) readLoop(pc *net.UDPConn) error {
	var bc batchConn
	if a, ok := pc.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		bc = ipv6.NewPacketConn(pc)
	} else {
		bc = ipv4.NewPacketConn(pc)
	}
	in := make([]ipv4.Message, batchSize)
	out := make([]ipv4.Message, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, 4096)}
		out[i].Buffers = [][]byte{make([]byte, 0, maxUDPSize)}
	}
	name := make([]byte, 0, 256)
	for {
		n, err := bc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		k := 0
		for i := range n {
			m := &in[i]
			var reply []byte
			if ok, slip := z.limit(m.Addr); ok {
				reply = z.answerUDP(m.Buffers[0][:m.N], out[k].Buffers[0][:0], name)
			} else if slip {
				reply = truncatedReply(m.Buffers[0][:m.N], out[k].Buffers[0][:0])
			}
			if reply == nil {
				continue
			}
			out[k].Buffers[0] = reply
			out[k].Addr = m.Addr
			k++
		}
		for sent := 0; sent < k; {
			w, err := bc.WriteBatch(out[sent:k], 0)
			if err != nil {
				// A reply that cannot be sent (the client's port closed)
				// is dropped like any lost datagram.
				sent++
				continue
			}
			sent += w
		}
	}
}

// limit applies the rate limit to the source of a datagram.
func (z *Zone) limit(a net.Addr) (ok, slip bool) {
	if z.rrl == nil {
		return true, false
	}
	u, isUDP := a.(*net.UDPAddr)
	if !isUDP {
		return true, false
	}
	ip, _ := netip.AddrFromSlice(u.IP)
	return z.rrl.allow(ip, time.Now())
}

// truncatedReply is an empty reply with TC set (RFC 2181 §9), so that the
// client asks again over TCP; nil for anything but a plain query.
func truncatedReply(b, out []byte) []byte {
	q := new(dns.Msg)
	if q.Unpack(b) != nil || q.Response || len(q.Question) != 1 {
		return nil
	}
	r := new(dns.Msg)
	r.SetReply(q)
	r.Truncated = true
	if opt := q.IsEdns0(); opt != nil {
		r.SetEdns0(maxUDPSize, opt.Do())
	}
	p, err := r.PackBuffer(out)
	if err != nil {
		return nil
	}
	return p
}

// answerUDP returns the packed reply to the query b (appended to out), or
// nil to send nothing.
func (z *Zone) answerUDP(b, out, name []byte) []byte {
	v := z.view.Load()
	k, qend, fast := parseFast(b, name)
	if fast {
		if r := v.cache.get(k); r != nil {
			out = append(out, r...)
			out[0], out[1] = b[0], b[1]
			out[2] = out[2]&^0x01 | b[2]&0x01 // RD, copied (RFC 1035 §4.1.1)
			out[3] = out[3]&^0x10 | b[3]&0x10 // CD, copied (RFC 4035 §3.1.6)
			copy(out[12:qend], b[12:qend])    // the name as asked, case included
			return out
		}
	}
	q := new(dns.Msg)
	if err := q.Unpack(b); err != nil {
		// Answer FORMERR when at least the header is readable and it is a
		// query (RFC 1035 §4.1.1); drop the rest.
		if len(b) < 12 || b[2]&0x80 != 0 {
			return nil
		}
		r := new(dns.Msg)
		r.Id = binary.BigEndian.Uint16(b)
		r.Response = true
		r.Opcode = int(b[2]>>3) & 0xf
		r.Rcode = dns.RcodeFormatError
		p, _ := r.PackBuffer(out)
		return p
	}
	if q.Response {
		return nil
	}
	r := z.replyIn(v, q, true)
	p, err := r.PackBuffer(out)
	if err != nil {
		return nil
	}
	if fast {
		v.cache.put(k, append([]byte(nil), p...))
	}
	return p
}
