package zrtp

import (
	"crypto/sha256"
	"testing"
	"time"
)

// handshakeMessages runs one lossless handshake per key agreement and
// returns every packet sent, as seeds for the fuzz targets.
func handshakeMessages(f *testing.F) [][]byte {
	var out [][]byte
	for i, ka := range []Algo{X255, EC25, X2K7, DH3k} {
		a := newParty(f, "alice", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{ka, Mult}}, uint64(10+i))
		b := newParty(f, "bob", Config{ZID: zidBob, SSRC: 2, KeyAgreements: []Algo{ka, Mult}}, uint64(20+i))
		l := &link{}
		l.tamper = func(_ *party, pkt []byte) []byte {
			out = append(out, pkt)
			return pkt
		}
		run(f, l, a, b, 10*time.Second)
	}
	ping := newMessage(typePing, 24)
	copy(ping[12:], Version)
	out = append(out,
		EncodePacket(1, 2, ping),
		EncodePacket(1, 2, (&PingACK{}).encode()),
		EncodePacket(1, 2, encodeError(CodeBadHVI)),
		EncodePacket(1, 2, newMessage(typeGoClear, 20)),
		EncodePacket(1, 2, newMessage(typeSASrelay, 76)),
	)
	return out
}

func addMessages(f *testing.F, typ string) {
	for _, p := range handshakeMessages(f) {
		_, _, msg, err := ParsePacket(p)
		if err != nil {
			f.Fatal(err)
		}
		if typ == "" || string(msg[4:12]) == typ {
			f.Add(msg)
		}
	}
}

func FuzzParsePacket(f *testing.F) {
	for _, p := range handshakeMessages(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, ssrc, msg, err := ParsePacket(b)
		if err != nil {
			return
		}
		again := EncodePacket(seq, ssrc, msg)
		if string(again[:len(again)-4]) != string(b[:len(b)-4]) {
			t.Fatalf("re-encoding changed the packet")
		}
	})
}

func FuzzParseHello(f *testing.F) {
	addMessages(f, typeHello)
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, err := ParseHello(msg)
		if err != nil {
			return
		}
		h2 := *h
		out, err := h2.encode(make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		// Everything but the unused bits and the MAC survives a round trip.
		if len(out) != len(msg) || string(out[12:76]) != string(msg[12:76]) || string(out[80:len(out)-8]) != string(msg[80:len(msg)-8]) {
			t.Fatalf("round trip changed the Hello")
		}
	})
}

func FuzzParseCommit(f *testing.F) {
	addMessages(f, typeCommit)
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := ParseCommit(msg)
		if err != nil {
			return
		}
		c2 := *c
		out := c2.encode(make([]byte, 32))
		if len(out) != len(msg) || string(out[:len(out)-8]) != string(msg[:len(msg)-8]) {
			t.Fatalf("round trip changed the Commit")
		}
	})
}

func FuzzParseDHPart(f *testing.F) {
	addMessages(f, typeDHPart1)
	addMessages(f, typeDHPart2)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for part := 1; part <= 2; part++ {
			d, err := ParseDHPart(msg, part)
			if err != nil {
				continue
			}
			d2 := *d
			out, err := d2.encode(make([]byte, 32))
			if err != nil {
				t.Fatal(err)
			}
			if string(out[:len(out)-8]) != string(msg[:len(msg)-8]) {
				t.Fatalf("round trip changed DHPart%d", part)
			}
		}
	})
}

func FuzzParseConfirm(f *testing.F) {
	addMessages(f, typeConfirm1)
	addMessages(f, typeConfirm2)
	key := make([]byte, 16)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for part := 1; part <= 2; part++ {
			c, err := ParseConfirm(msg, part)
			if err != nil {
				continue
			}
			_ = c.open(sha256New, key, key) // must not panic on any body
		}
	})
}

func FuzzParseOther(f *testing.F) {
	addMessages(f, "")
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, _ = ParseAck(msg)
		_, _ = ParseError(msg)
		_, _ = ParseGoClear(msg)
		_, _ = ParsePing(msg)
		_, _ = ParsePingACK(msg)
		_ = ParseSASrelay(msg)
		_, _ = messageType(msg)
	})
}

// FuzzEngine feeds arbitrary packets to engines in each state reached by a
// real handshake; nothing may panic.
func FuzzEngine(f *testing.F) {
	for _, p := range handshakeMessages(f) {
		f.Add(p, uint8(0))
	}
	f.Fuzz(func(t *testing.T, pkt []byte, steps uint8) {
		a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{X255}}, 1)
		b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, KeyAgreements: []Algo{X255}}, 2)
		now := t0
		ra := a.e.Start(now)
		rb := b.e.Start(now)
		qa, qb := rb.Packets, ra.Packets // packets for a, for b
		for i := 0; i < int(steps%12); i++ {
			var na, nb [][]byte
			for _, p := range qa {
				r, _ := a.e.HandlePacket(now, p)
				nb = append(nb, r.Packets...)
			}
			for _, p := range qb {
				r, _ := b.e.HandlePacket(now, p)
				na = append(na, r.Packets...)
			}
			qa, qb = na, nb
		}
		_, _ = a.e.HandlePacket(now, pkt)
		_, _ = b.e.HandlePacket(now, pkt)
		a.e.HandleTimeout(now.Add(time.Second))
	})
}

var sha256New = sha256.New
