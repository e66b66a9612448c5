package srtp

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/phonex/phonex/internal/media/rtp"
)

var profiles = []struct{ cipher, tag string }{
	{CipherAES1, TagHS32}, {CipherAES1, TagHS80}, {CipherAES3, TagHS32}, {CipherAES3, TagHS80},
}

func keys(cipher string, seed byte) Keys {
	n := 16
	if cipher == CipherAES3 {
		n = 32
	}
	k := Keys{MasterKey: make([]byte, n), MasterSalt: make([]byte, SaltLen)}
	for i := range k.MasterKey {
		k.MasterKey[i] = seed + byte(i)
	}
	for i := range k.MasterSalt {
		k.MasterSalt[i] = seed ^ byte(i*7)
	}
	return k
}

// pair returns the two ends of a call: a's local keys are b's remote ones.
func pair(t testing.TB, cipher, tag string) (a, b *Session) {
	t.Helper()
	ka, kb := keys(cipher, 1), keys(cipher, 100)
	a, err := NewSession(Config{Cipher: cipher, AuthTag: tag, Local: ka, Remote: kb})
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewSession(Config{Cipher: cipher, AuthTag: tag, Local: kb, Remote: ka})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

func packets(t testing.TB, n int, startSeq byte) [][]byte {
	t.Helper()
	p, err := rtp.NewPacketizer(111, bytes.NewReader([]byte{0xCA, 0xFE, 0xBA, 0xBE, startSeq, 0xF0, 0, 0, 0, 0}))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for i := range n {
		payload := bytes.Repeat([]byte{byte(i)}, 160)
		pkt, err := p.Packetize(nil, payload, 960)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pkt)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, pr := range profiles {
		t.Run(pr.cipher+"_"+pr.tag, func(t *testing.T) {
			a, b := pair(t, pr.cipher, pr.tag)
			// 0xFFF0 start: the sequence number wraps and the ROC advances.
			for i, pkt := range packets(t, 40, 0xFF) {
				sp, err := a.Protect(nil, pkt)
				if err != nil {
					t.Fatal(err)
				}
				if len(sp) != len(pkt)+a.Overhead() {
					t.Fatalf("protected %d bytes, want %d", len(sp), len(pkt)+a.Overhead())
				}
				if bytes.Contains(sp, pkt[rtp.HeaderLen:]) {
					t.Fatal("payload in the clear")
				}
				got, err := b.Unprotect(nil, sp)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if !bytes.Equal(got, pkt) {
					t.Fatalf("packet %d differs", i)
				}
			}
		})
	}
}

func TestRejects(t *testing.T) {
	for _, pr := range profiles {
		t.Run(pr.cipher+"_"+pr.tag, func(t *testing.T) {
			a, b := pair(t, pr.cipher, pr.tag)
			pkts := packets(t, 5, 0)
			var sp [][]byte
			for _, p := range pkts {
				s, err := a.Protect(nil, p)
				if err != nil {
					t.Fatal(err)
				}
				sp = append(sp, s)
			}
			// Tampering anywhere (header, payload, tag) fails authentication.
			for _, off := range []int{2, 20, len(sp[0]) - 1} {
				bad := bytes.Clone(sp[0])
				bad[off] ^= 0x01
				if _, err := b.Unprotect(nil, bad); !errors.Is(err, ErrAuth) {
					t.Fatalf("tamper at %d: %v", off, err)
				}
			}
			// A forged copy did not consume the index: the real packet passes.
			if _, err := b.Unprotect(nil, sp[0]); err != nil {
				t.Fatalf("real packet after forgeries: %v", err)
			}
			if _, err := b.Unprotect(nil, sp[0]); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay: %v", err)
			}
			// Reordering within the window is fine, replaying it is not.
			if _, err := b.Unprotect(nil, sp[3]); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Unprotect(nil, sp[2]); err != nil {
				t.Fatalf("reordered packet: %v", err)
			}
			if _, err := b.Unprotect(nil, sp[3]); !errors.Is(err, ErrReplay) {
				t.Fatalf("replay of reordered packet: %v", err)
			}
			// Our own packets do not verify with the peer's keys.
			if _, err := a.Unprotect(nil, sp[4]); !errors.Is(err, ErrAuth) {
				t.Fatalf("reflected packet: %v", err)
			}
			if _, err := b.Unprotect(nil, sp[4][:10]); !errors.Is(err, ErrPacket) {
				t.Fatalf("short packet: %v", err)
			}
			b.Close()
			if _, err := b.Unprotect(nil, sp[4]); !errors.Is(err, ErrClosed) {
				t.Fatalf("after close: %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	k16, k32 := keys(CipherAES1, 1), keys(CipherAES3, 1)
	tests := []struct {
		cfg  Config
		want error
	}{
		{Config{Cipher: "AES2", AuthTag: TagHS80, Local: k16, Remote: k16}, ErrUnsupported},
		{Config{Cipher: CipherAES1, AuthTag: "SK32", Local: k16, Remote: k16}, ErrUnsupported},
		{Config{Cipher: CipherAES1, AuthTag: TagHS80, Local: k32, Remote: k16}, ErrKey},
		{Config{Cipher: CipherAES3, AuthTag: TagHS80, Local: k32, Remote: k16}, ErrKey},
		{Config{Cipher: CipherAES1, AuthTag: TagHS32, Local: k16, Remote: Keys{k16.MasterKey, k16.MasterSalt[:12]}}, ErrKey},
	}
	for i, tt := range tests {
		if _, err := NewSession(tt.cfg); !errors.Is(err, tt.want) {
			t.Errorf("%d: %v, want %v", i, err, tt.want)
		}
	}
}

func FuzzUnprotect(f *testing.F) {
	a, _ := pair(f, CipherAES1, TagHS80)
	for _, p := range packets(f, 3, 0) {
		s, _ := a.Protect(nil, p)
		f.Add(s)
	}
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		// A fresh receiver each time so the replay window does not hide
		// the parsing paths.
		_, b := pair(t, CipherAES1, TagHS80)
		out, err := b.Unprotect(nil, in)
		if err != nil {
			if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrPacket) && !errors.Is(err, ErrReplay) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if _, err := rtp.Parse(out); err != nil {
			t.Fatalf("authenticated packet does not parse: %v", err)
		}
	})
}

func BenchmarkProtectUnprotect(b *testing.B) {
	for _, pr := range profiles {
		b.Run(fmt.Sprintf("%s_%s", pr.cipher, pr.tag), func(b *testing.B) {
			a, r := pair(b, pr.cipher, pr.tag)
			p, _ := rtp.NewPacketizer(0, nil)
			payload := make([]byte, 160)
			var pkt, sp, out []byte
			b.ReportAllocs()
			b.SetBytes(160)
			for b.Loop() {
				pkt, _ = p.Packetize(pkt, payload, 160)
				var err error
				if sp, err = a.Protect(sp, pkt); err != nil {
					b.Fatal(err)
				}
				if out, err = r.Unprotect(out, sp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestRTCPRoundTrip(t *testing.T) {
	for _, tag := range []string{TagHS32, TagHS80} {
		a, b := pair(t, CipherAES1, tag)
		// A receiver report with no blocks and an SDES CNAME.
		rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 7, 0x81, 202, 0, 2, 0, 0, 0, 7, 1, 1, 'x', 0}
		p, err := a.ProtectRTCP(nil, rr)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(p, []byte{1, 1, 'x'}) {
			t.Error("SRTCP payload in the clear")
		}
		got, err := b.UnprotectRTCP(nil, p)
		if err != nil || !bytes.Equal(got, rr) {
			t.Fatalf("%s: %x, %v", tag, got, err)
		}
		if _, err := b.UnprotectRTCP(nil, p); !errors.Is(err, ErrReplay) {
			t.Errorf("%s replay: %v", tag, err)
		}
		p2, _ := a.ProtectRTCP(nil, rr)
		p2[len(p2)-1] ^= 1
		if _, err := b.UnprotectRTCP(nil, p2); !errors.Is(err, ErrAuth) {
			t.Errorf("%s tampered: %v", tag, err)
		}
		if _, err := b.UnprotectRTCP(nil, p[:10]); !errors.Is(err, ErrPacket) {
			t.Errorf("%s short: %v", tag, err)
		}
	}
}

func FuzzUnprotectRTCP(f *testing.F) {
	a, b := pair(f, CipherAES1, TagHS80)
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 7}
	p, err := a.ProtectRTCP(nil, rr)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	f.Add(rr)
	f.Fuzz(func(t *testing.T, in []byte) {
		if out, err := b.UnprotectRTCP(nil, in); err == nil && len(out) < 8 {
			t.Fatalf("accepted %x as %x", in, out)
		}
	})
}
