package stp

import (
	"fmt"
	"testing"
)

var benchProtocols = []Protocol{SimpleV1, SimpleV2, SimpleV3, AuthV1, GroupV1}

func benchName(p Protocol) string {
	switch p.Type {
	case TypeSimple:
		return fmt.Sprintf("STPSimpleV%d", p.Version)
	case TypeAuth:
		return "STPSimpleAuth"
	case TypeGroup:
		return "STPSimpleGroup2"
	}
	return p.String()
}

// BenchmarkEncrypt seals a 256-byte AMP payload. Group seals to two
// devices (one HPKE and one RSA slot in the fixture: Carol, Bob).
func BenchmarkEncrypt(b *testing.B) {
	f := loadFixture(b)
	payload := make([]byte, 256)
	for _, p := range benchProtocols {
		b.Run(benchName(p), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				sealFor(b, f, p, &Outgoing{AmpType: 1, AmpVersion: 2, Payload: payload})
			}
		})
	}
}

// BenchmarkDecrypt opens what BenchmarkEncrypt seals (replay guard off).
func BenchmarkDecrypt(b *testing.B) {
	f := loadFixture(b)
	payload := make([]byte, 256)
	r := f.receiver(f.Bob)
	r.Replay = nil
	d := NewDispatcher()
	for _, p := range benchProtocols {
		env := sealFor(b, f, p, &Outgoing{AmpType: 1, AmpVersion: 2, Payload: payload})
		b.Run(benchName(p), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := d.Open(env, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
