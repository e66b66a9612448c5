package zrtp

import (
	"testing"
	"time"
)

func benchHandshake(b *testing.B, ka Algo) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		x := newParty(b, "alice", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{ka}}, uint64(2*i))
		y := newParty(b, "bob", Config{ZID: zidBob, SSRC: 2, KeyAgreements: []Algo{ka}, Passive: true}, uint64(2*i+1))
		run(b, &link{}, x, y, 10*time.Second)
		if x.secure == nil || y.secure == nil {
			b.Fatal("no keys")
		}
	}
}

func BenchmarkHandshakeDH3k(b *testing.B) { benchHandshake(b, DH3k) }
func BenchmarkHandshakeX255(b *testing.B) { benchHandshake(b, X255) }
func BenchmarkHandshakeEC25(b *testing.B) { benchHandshake(b, EC25) }
func BenchmarkHandshakeX2K7(b *testing.B) { benchHandshake(b, X2K7) }

func BenchmarkMultistream(b *testing.B) {
	b.ReportAllocs()
	x := newParty(b, "alice", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{X255, Mult}}, 1)
	y := newParty(b, "bob", Config{ZID: zidBob, SSRC: 2, KeyAgreements: []Algo{X255, Mult}, Passive: true}, 2)
	run(b, &link{}, x, y, 10*time.Second)
	for i := 0; b.Loop(); i++ {
		x2 := newParty(b, "alice", Config{ZID: zidAlice, SSRC: 3, Session: x.secure.Session}, uint64(2*i+10))
		y2 := newParty(b, "bob", Config{ZID: zidBob, SSRC: 4, Session: y.secure.Session, Passive: true}, uint64(2*i+11))
		run(b, &link{}, x2, y2, 10*time.Second)
	}
}

func BenchmarkParsePacket(b *testing.B) {
	pkt := EncodePacket(1, 2, ackMessage(typeHelloACK))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := ParsePacket(pkt); err != nil {
			b.Fatal(err)
		}
	}
}
