package zrtp

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)

func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return rand.NewChaCha8(s)
}

// party is one side of an in-memory call.
type party struct {
	name    string
	e       *Engine
	secure  *Secure
	retain  *Retain
	failed  error
	dropped []error
	sent    []string // message types sent, in order
}

type inflight struct {
	at  time.Time
	to  *party
	pkt []byte
	n   int // tie-break for a stable order
}

// link is a lossy, reordering in-memory network driven by a fake clock.
type link struct {
	rng      *rand.Rand
	loss     float64
	jitter   time.Duration
	queue    []inflight
	n        int
	now      time.Time
	tamper   func(from *party, pkt []byte) []byte
	dropNext map[string]int // drop the next N packets of a message type
}

func msgTypeOf(pkt []byte) string {
	if len(pkt) < 24 {
		return "?"
	}
	return string(pkt[16:24])
}

func (l *link) post(from, to *party, pkts [][]byte) {
	for _, p := range pkts {
		typ := msgTypeOf(p)
		from.sent = append(from.sent, typ)
		if l.tamper != nil {
			p = l.tamper(from, p)
			if p == nil {
				continue
			}
		}
		if l.dropNext[typ] > 0 {
			l.dropNext[typ]--
			continue
		}
		if l.loss > 0 && l.rng.Float64() < l.loss {
			continue
		}
		d := time.Millisecond
		if l.jitter > 0 {
			d += time.Duration(l.rng.Int64N(int64(l.jitter)))
		}
		l.n++
		l.queue = append(l.queue, inflight{at: l.now.Add(d), to: to, pkt: p, n: l.n})
	}
}

func (p *party) absorb(r Result) {
	for _, ev := range r.Events {
		switch ev := ev.(type) {
		case *Secure:
			p.secure = ev
		case *Retain:
			p.retain = ev
		case *Failed:
			p.failed = ev.Err
		}
	}
}

// run drives two engines until both are done (keys and cache update, or
// failure) or the deadline passes.
func run(t testing.TB, l *link, a, b *party, limit time.Duration) {
	t.Helper()
	l.now = t0
	other := map[*party]*party{a: b, b: a}
	for _, p := range []*party{a, b} {
		r := p.e.Start(l.now)
		p.absorb(r)
		l.post(p, other[p], r.Packets)
	}
	done := func(p *party) bool {
		return p.failed != nil || (p.secure != nil && p.e.state == stateSecure)
	}
	for !(done(a) && done(b)) {
		if l.now.Sub(t0) > limit {
			t.Fatalf("no result after %v: %s state %d, %s state %d", limit, a.name, a.e.state, b.name, b.e.state)
		}
		// Next event: a delivery or a timer.
		next := time.Time{}
		idx := -1
		for i, f := range l.queue {
			if idx < 0 || f.at.Before(next) || f.at.Equal(next) && f.n < l.queue[idx].n {
				next, idx = f.at, i
			}
		}
		var tp *party
		for _, p := range []*party{a, b} {
			if nt := p.e.NextTimeout(); !nt.IsZero() && (next.IsZero() || nt.Before(next)) {
				next, tp, idx = nt, p, -1
			}
		}
		if next.IsZero() {
			t.Fatalf("stalled: %s state %d, %s state %d", a.name, a.e.state, b.name, b.e.state)
		}
		l.now = next
		if tp != nil {
			r := tp.e.HandleTimeout(l.now)
			tp.absorb(r)
			l.post(tp, other[tp], r.Packets)
			continue
		}
		f := l.queue[idx]
		l.queue = append(l.queue[:idx], l.queue[idx+1:]...)
		r, err := f.to.e.HandlePacket(l.now, f.pkt)
		if err != nil {
			f.to.dropped = append(f.to.dropped, err)
		}
		f.to.absorb(r)
		l.post(f.to, other[f.to], r.Packets)
	}
}

type mapCache map[ZID]CachedSecret

func (m mapCache) Lookup(z ZID) (CachedSecret, bool) { c, ok := m[z]; return c, ok }

func newParty(t testing.TB, name string, cfg Config, seed uint64) *party {
	t.Helper()
	if cfg.Rand == nil {
		cfg.Rand = testRand(seed)
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &party{name: name, e: e}
}

var (
	zidAlice = ZID{'a', 'l', 'i', 'c', 'e', 0, 0, 0, 0, 0, 0, 1}
	zidBob   = ZID{'b', 'o', 'b', 0, 0, 0, 0, 0, 0, 0, 0, 2}
)

func checkAgreement(t *testing.T, a, b *party) {
	t.Helper()
	if a.failed != nil || b.failed != nil {
		t.Fatalf("failed: %s: %v; %s: %v", a.name, a.failed, b.name, b.failed)
	}
	sa, sb := a.secure, b.secure
	if sa.SAS == "" || sa.SAS != sb.SAS || sa.SASValue != sb.SASValue {
		t.Errorf("SAS %q vs %q", sa.SAS, sb.SAS)
	}
	if sa.Initiator == sb.Initiator {
		t.Errorf("both initiator=%v", sa.Initiator)
	}
	ka, kb := sa.Keys, sb.Keys
	if !bytes.Equal(ka.InitiatorKey, kb.InitiatorKey) || !bytes.Equal(ka.InitiatorSalt, kb.InitiatorSalt) ||
		!bytes.Equal(ka.ResponderKey, kb.ResponderKey) || !bytes.Equal(ka.ResponderSalt, kb.ResponderSalt) {
		t.Errorf("SRTP keys differ")
	}
	if bytes.Equal(ka.InitiatorKey, ka.ResponderKey) {
		t.Errorf("the two directions share a key")
	}
	if len(ka.InitiatorKey) != cipherKeyLen(sa.Cipher) || len(ka.InitiatorSalt) != 14 {
		t.Errorf("key %d salt %d bytes for %s", len(ka.InitiatorKey), len(ka.InitiatorSalt), sa.Cipher)
	}
	if sa.Cipher != sb.Cipher || sa.Hash != sb.Hash || sa.KeyAgreement != sb.KeyAgreement || sa.AuthTag != sb.AuthTag || sa.SASType != sb.SASType {
		t.Errorf("algorithms differ: %+v vs %+v", sa, sb)
	}
}

func TestHandshakeMatrix(t *testing.T) {
	seed := uint64(1)
	for _, ka := range []Algo{DH3k, X255, E255, EC25, X2K7} {
		for _, h := range []Algo{S256, S384} {
			for _, c := range []Algo{AES1, AES3} {
				for _, s := range []Algo{B32, B256} {
					name := fmt.Sprintf("%s/%s/%s/%s", ka, h, c, s)
					t.Run(name, func(t *testing.T) {
						seed++
						cfg := func(z ZID, ssrc uint32) Config {
							return Config{ZID: z, SSRC: ssrc, KeyAgreements: []Algo{ka, Mult}, Hashes: []Algo{h},
								Ciphers: []Algo{c}, SASTypes: []Algo{s}, AuthTags: []Algo{HS32}}
						}
						a := newParty(t, "alice", cfg(zidAlice, 1111), seed*2)
						b := newParty(t, "bob", cfg(zidBob, 2222), seed*2+1)
						run(t, &link{}, a, b, 10*time.Second)
						checkAgreement(t, a, b)
						sa := a.secure
						if sa.KeyAgreement != ka || sa.Hash != h || sa.Cipher != c || sa.SASType != s || sa.AuthTag != HS32 {
							t.Errorf("negotiated %s %s %s %s %s", sa.KeyAgreement, sa.Hash, sa.Cipher, sa.SASType, sa.AuthTag)
						}
						if s == B32 && len(sa.SAS) != 4 {
							t.Errorf("B32 SAS %q", sa.SAS)
						}
						if sa.CacheMatched || sa.CacheMismatch || a.retain == nil || b.retain == nil {
							t.Errorf("first call: matched=%v mismatch=%v retain %v %v", sa.CacheMatched, sa.CacheMismatch, a.retain, b.retain)
						}
						if !bytes.Equal(a.retain.Record.RS1, b.retain.Record.RS1) {
							t.Errorf("new retained secrets differ")
						}
					})
				}
			}
		}
	}
}

func TestHandshakeLossy(t *testing.T) {
	for seed := uint64(0); seed < 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			l := &link{rng: rand.New(testRand(1000 + seed)), loss: 0.3, jitter: 40 * time.Millisecond}
			kas := []Algo{X255, DH3k, X2K7}
			ka := kas[seed%3]
			a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{ka}}, 10+seed)
			b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, KeyAgreements: []Algo{ka}}, 20+seed)
			run(t, l, a, b, 30*time.Second)
			if a.failed != nil || b.failed != nil {
				// Loss of 30% can exhaust a schedule; that must be a clean
				// timeout on the side that gave up, never a mismatch.
				for _, p := range []*party{a, b} {
					var pe *Error
					if p.failed != nil && !errors.Is(p.failed, ErrRetransmitExceeded) && !(errors.As(p.failed, &pe) && pe.Code == CodeTimeout) {
						t.Fatalf("%s failed: %v", p.name, p.failed)
					}
				}
				t.Skipf("schedule exhausted under loss: %v / %v", a.failed, b.failed)
			}
			checkAgreement(t, a, b)
		})
	}
}

func TestRetransmissionRecoversDrops(t *testing.T) {
	l := &link{dropNext: map[string]int{typeHello: 2, typeCommit: 1, typeDHPart1: 1, typeDHPart2: 2, typeConfirm1: 1, typeConfirm2: 1, typeConf2ACK: 1, typeHelloACK: 1}}
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, Passive: true}, 2)
	run(t, l, a, b, 20*time.Second)
	checkAgreement(t, a, b)
	if !a.secure.Initiator {
		t.Errorf("the passive side became initiator")
	}
	if a.secure.KeyAgreement != X2K7 {
		t.Errorf("our own clients negotiated %s, want the hybrid", a.secure.KeyAgreement)
	}
}

func TestHelloTimerSchedule(t *testing.T) {
	a := newParty(t, "alice", Config{ZID: zidAlice}, 1)
	r := a.e.Start(t0)
	if len(r.Packets) != 1 {
		t.Fatalf("Start sent %d packets", len(r.Packets))
	}
	want := []time.Duration{50, 100, 200, 200}
	now := t0
	for i, d := range want {
		nt := a.e.NextTimeout()
		if got := nt.Sub(now); got != d*time.Millisecond {
			t.Fatalf("retransmission %d after %v, want %vms", i, got, d)
		}
		now = nt
		r = a.e.HandleTimeout(now)
		if len(r.Packets) != 1 || msgTypeOf(r.Packets[0]) != typeHello {
			t.Fatalf("retransmission %d: %d packets", i, len(r.Packets))
		}
	}
	var failed bool
	for i := 0; i < 100 && !failed; i++ {
		r = a.e.HandleTimeout(a.e.NextTimeout())
		for _, ev := range r.Events {
			if f, ok := ev.(*Failed); ok && errors.Is(f.Err, ErrRetransmitExceeded) {
				failed = true
			}
		}
	}
	if !failed || !a.e.NextTimeout().IsZero() {
		t.Fatal("Hello schedule did not end in a timeout")
	}
	// 50 + 100 + 18*200 ms = 3.75 s (§6)
	if got := a.e.now.Sub(t0); got != 3750*time.Millisecond+200*time.Millisecond {
		t.Logf("gave up after %v", got)
	}
}

func secondCall(t *testing.T, ca, cb mapCache, seed uint64) (*party, *party) {
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, Cache: ca, KeyAgreements: []Algo{X255}}, seed)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, Cache: cb, KeyAgreements: []Algo{X255}}, seed+1)
	run(t, &link{}, a, b, 10*time.Second)
	checkAgreement(t, a, b)
	ca[zidBob] = a.retain.Record
	cb[zidAlice] = b.retain.Record
	return a, b
}

func TestRetainedSecrets(t *testing.T) {
	ca, cb := mapCache{}, mapCache{}
	a, b := secondCall(t, ca, cb, 100)
	if a.secure.CacheMatched || b.secure.CacheMismatch {
		t.Fatal("first call should neither match nor mismatch")
	}
	a, b = secondCall(t, ca, cb, 200)
	if !a.secure.CacheMatched || !b.secure.CacheMatched || a.secure.CacheMismatch || b.secure.CacheMismatch {
		t.Fatalf("second call: matched %v/%v mismatch %v/%v", a.secure.CacheMatched, b.secure.CacheMatched, a.secure.CacheMismatch, b.secure.CacheMismatch)
	}
	if a.secure.PreviouslyVerified {
		t.Fatal("nobody verified the SAS yet")
	}
	if !bytes.Equal(ca[zidBob].RS2, b.retain.Record.RS2) || ca[zidBob].RS2 == nil {
		t.Fatal("rs2 should hold the previous rs1")
	}

	// The users compare the SAS and mark the peer verified.
	for _, c := range []mapCache{ca, cb} {
		for z, r := range c {
			r.Verified = true
			c[z] = r
		}
	}
	a, b = secondCall(t, ca, cb, 300)
	if !a.secure.PreviouslyVerified || !b.secure.PeerVerified || !a.retain.Record.Verified {
		t.Fatalf("verified flag lost: %+v", a.secure)
	}

	// Losing only rs1 recovers through rs2 (§4.3).
	r := ca[zidBob]
	r.RS1 = bytes.Repeat([]byte{7}, 32)
	ca[zidBob] = r
	a, b = secondCall(t, ca, cb, 400)
	if !a.secure.CacheMatched || !b.secure.CacheMatched {
		t.Fatal("rs2 should have matched")
	}

	// A tampered record (both secrets) is a cache mismatch on both sides:
	// possible MitM, and the update needs the SAS to be verified first.
	ca[zidBob] = CachedSecret{RS1: bytes.Repeat([]byte{1}, 32), RS2: bytes.Repeat([]byte{2}, 32), Verified: true}
	a, b = secondCall(t, ca, cb, 500)
	for _, p := range []*party{a, b} {
		if p.secure.CacheMatched || !p.secure.CacheMismatch || p.secure.PreviouslyVerified || !p.retain.RequiresVerification || p.retain.Record.Verified {
			t.Errorf("%s: %+v retain %+v", p.name, p.secure, p.retain)
		}
	}
}

func TestAuxSecret(t *testing.T) {
	aux := []byte("identity binding")
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, AuxSecret: aux}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, AuxSecret: aux}, 2)
	run(t, &link{}, a, b, 10*time.Second)
	checkAgreement(t, a, b)
	if a.secure.AuxMismatch || b.secure.AuxMismatch {
		t.Fatal("aux secrets should match")
	}
	a = newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, AuxSecret: aux}, 3)
	b = newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, AuxSecret: []byte("other")}, 4)
	run(t, &link{}, a, b, 10*time.Second)
	checkAgreement(t, a, b)
	if !a.secure.AuxMismatch || !b.secure.AuxMismatch {
		t.Fatal("aux mismatch not reported")
	}
}

func TestMultistream(t *testing.T) {
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{DH3k, Mult}, Ciphers: []Algo{AES3}}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, KeyAgreements: []Algo{DH3k, Mult}, Ciphers: []Algo{AES3}}, 2)
	run(t, &link{}, a, b, 10*time.Second)
	checkAgreement(t, a, b)
	first := a.secure

	l := &link{dropNext: map[string]int{typeConfirm1: 1}}
	a2 := newParty(t, "alice-video", Config{ZID: zidAlice, SSRC: 3, Session: a.secure.Session}, 5)
	b2 := newParty(t, "bob-video", Config{ZID: zidBob, SSRC: 4, Session: b.secure.Session}, 6)
	run(t, l, a2, b2, 10*time.Second)
	checkAgreement(t, a2, b2)
	s := a2.secure
	if !s.Multistream || s.KeyAgreement != Mult || s.Cipher != AES3 || s.SAS != first.SAS {
		t.Fatalf("second stream: %+v", s)
	}
	if bytes.Equal(s.Keys.InitiatorKey, first.Keys.InitiatorKey) || bytes.Equal(s.Keys.InitiatorKey, first.Keys.ResponderKey) {
		t.Fatal("second stream reuses the first stream's keys")
	}
	for _, p := range []*party{a2, b2} {
		for _, typ := range p.sent {
			if typ == typeDHPart1 || typ == typeDHPart2 {
				t.Fatalf("%s sent %s in Multistream mode", p.name, typ)
			}
		}
		if p.retain != nil {
			t.Fatalf("%s updated the cache in Multistream mode", p.name)
		}
	}
	// A Multistream Commit to an engine without a session is refused.
	c := newParty(t, "carol", Config{ZID: zidBob, SSRC: 9, Passive: true}, 7)
	run(t, &link{}, newParty(t, "alice3", Config{ZID: zidAlice, SSRC: 8, Session: a.secure.Session}, 8), c, 10*time.Second)
	var pe *Error
	if !errors.As(c.failed, &pe) || pe.Code != CodeNoSharedSecret {
		t.Fatalf("carol: %v", c.failed)
	}
}

// reframe lets the test play an attacker in the media path: it changes a
// message and fixes up the CRC.
func reframe(pkt []byte, edit func(msg []byte)) []byte {
	seq, ssrc, msg, err := ParsePacket(pkt)
	if err != nil {
		return pkt
	}
	m := bytes.Clone(msg)
	edit(m)
	return EncodePacket(seq, ssrc, m)
}

func TestModifiedDHPart2CaughtByCommitment(t *testing.T) {
	l := &link{}
	l.tamper = func(from *party, pkt []byte) []byte {
		if msgTypeOf(pkt) != typeDHPart2 {
			return pkt
		}
		return reframe(pkt, func(m []byte) { m[len(m)-macLen-1] ^= 0x01 }) // last byte of pvi
	}
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{X255}}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, Passive: true}, 2)
	run(t, l, a, b, 20*time.Second)
	var pe *Error
	if !errors.As(b.failed, &pe) || pe.Code != CodeBadHVI || pe.Remote {
		t.Fatalf("responder: %v", b.failed)
	}
	if !errors.As(a.failed, &pe) || pe.Code != CodeBadHVI || !pe.Remote {
		t.Fatalf("initiator should learn of the hvi error: %v", a.failed)
	}
}

func TestModifiedHelloCaughtByZRTPHash(t *testing.T) {
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, PeerHelloHash: a.e.HelloHash()}, 2)
	if err := CheckHelloHash(a.e.HelloHash(), a.e.hello.raw); err != nil {
		t.Fatal(err)
	}
	tampered := 0
	l := &link{}
	l.tamper = func(from *party, pkt []byte) []byte {
		if from == a && msgTypeOf(pkt) == typeHello && tampered < 2 {
			tampered++
			// Bid down: drop the hybrid from the key agreement list.
			return reframe(pkt, func(m []byte) { copy(m[80+4*2:], "DH3k") })
		}
		return pkt
	}
	run(t, l, a, b, 20*time.Second)
	checkAgreement(t, a, b)
	n := 0
	for _, err := range b.dropped {
		if errors.Is(err, ErrHelloHashMismatch) {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("bob dropped %d forged Hellos (errors %v)", n, b.dropped)
	}
}

func TestModifiedHelloCaughtByMAC(t *testing.T) {
	// Without signalling, a Hello changed in the path is caught when the
	// Commit reveals H2 and the Hello's MAC fails (§9).
	l := &link{}
	l.tamper = func(from *party, pkt []byte) []byte {
		if from.name == "alice" && msgTypeOf(pkt) == typeHello {
			return reframe(pkt, func(m []byte) { m[20] ^= 1 }) // client ID
		}
		return pkt
	}
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, Passive: true}, 2)
	run(t, l, a, b, 20*time.Second)
	if !errors.Is(b.failed, ErrMessageMAC) {
		t.Fatalf("bob: %v", b.failed)
	}
}

func TestErrorGoClearPing(t *testing.T) {
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2}, 2)
	run(t, &link{}, a, b, 10*time.Second)
	checkAgreement(t, a, b)

	// A GoClear without a valid clear_mac is dropped silently.
	forged := newMessage(typeGoClear, 20)
	if r, err := a.e.HandlePacket(t0, EncodePacket(8999, 2, forged)); !errors.Is(err, ErrMessageMAC) || len(r.Packets) != 0 {
		t.Fatalf("forged GoClear: %v, %d packets", err, len(r.Packets))
	}
	goClear := newMessage(typeGoClear, 20)
	mk := b.e.keys.macKeyI
	if !b.e.initiator {
		mk = b.e.keys.macKeyR
	}
	cm := secretID(b.e.hash.new, mk, []byte(typeGoClear))
	copy(goClear[12:], cm[:])
	r, err := a.e.HandlePacket(t0, EncodePacket(9000, 2, goClear))
	if err != nil || len(r.Packets) != 1 || len(r.Events) != 1 {
		t.Fatalf("GoClear: %v %d packets %d events", err, len(r.Packets), len(r.Events))
	}
	_, _, msg, _ := ParsePacket(r.Packets[0])
	if code, err := ParseError(msg); err != nil || code != CodeGoClearRefused {
		t.Fatalf("GoClear answer: %v %v", code, err)
	}
	if !a.e.Secure() || a.e.Failed() {
		t.Fatal("GoClear changed the state")
	}

	ping := newMessage(typePing, 24)
	copy(ping[12:], Version)
	copy(ping[16:], "endpoint")
	r, err = a.e.HandlePacket(t0, EncodePacket(9001, 0xabcdef, ping))
	if err != nil || len(r.Packets) != 1 {
		t.Fatalf("Ping: %v", err)
	}
	_, _, msg, _ = ParsePacket(r.Packets[0])
	ack, err := ParsePingACK(msg)
	if err != nil || string(ack.ReceivedHash[:]) != "endpoint" || ack.ReceivedSSRC != 0xabcdef {
		t.Fatalf("PingACK %+v %v", ack, err)
	}

	c := newParty(t, "carol", Config{ZID: zidAlice, SSRC: 1}, 3)
	c.e.Start(t0)
	r, _ = c.e.HandlePacket(t0, EncodePacket(5, 2, encodeError(CodeUnavailable)))
	var pe *Error
	if len(r.Events) != 1 || !errors.As(r.Events[0].(*Failed).Err, &pe) || pe.Code != CodeUnavailable || !pe.Remote {
		t.Fatalf("Error: %+v", r.Events)
	}
	if len(r.Packets) != 1 || msgTypeOf(r.Packets[0]) != typeErrorACK {
		t.Fatal("no ErrorACK")
	}
}

func TestEqualZIDRefused(t *testing.T) {
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 1)
	b := newParty(t, "bob", Config{ZID: zidAlice, SSRC: 2}, 2)
	run(t, &link{}, a, b, 10*time.Second)
	var pe *Error
	if !errors.As(a.failed, &pe) || pe.Code != CodeEqualZID {
		t.Fatalf("%v", a.failed)
	}
}

func TestResponderWatchdog(t *testing.T) {
	// The initiator vanishes after its Commit: the responder gives up after
	// ResponderTimeout with a protocol timeout Error.
	l := &link{}
	l.tamper = func(from *party, pkt []byte) []byte {
		if from.name == "alice" && msgTypeOf(pkt) == typeDHPart2 {
			return nil
		}
		return pkt
	}
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, MaxRetries: 200}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, Passive: true}, 2)
	run(t, l, a, b, 60*time.Second)
	var pe *Error
	if !errors.As(b.failed, &pe) || pe.Code != CodeTimeout || pe.Remote {
		t.Fatalf("bob: %v", b.failed)
	}
	if !errors.As(a.failed, &pe) || pe.Code != CodeTimeout || !pe.Remote {
		t.Fatalf("alice should get bob's timeout Error: %v", a.failed)
	}
}
