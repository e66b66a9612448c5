package zrtp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strings"
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

// FuzzParsePacket parses packets as received and, so that mutated input
// gets past the CRC, with the CRC recomputed. Whatever parses re-encodes to
// the same sequence number, SSRC and message, and to the same bytes but for
// the unused second byte (RFC 6189 §5), which is sent as zero.
func FuzzParsePacket(f *testing.F) {
	for _, p := range handshakeMessages(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		packetRoundTrip(t, b)
		if len(b) >= crcLen {
			fixed := bytes.Clone(b)
			n := len(fixed) - crcLen
			binary.LittleEndian.PutUint32(fixed[n:], packetCRC(fixed[:n]))
			packetRoundTrip(t, fixed)
		}
	})
}

func packetRoundTrip(t *testing.T, b []byte) {
	seq, ssrc, msg, err := ParsePacket(b)
	if err != nil {
		return
	}
	again := EncodePacket(seq, ssrc, msg)
	seq2, ssrc2, msg2, err := ParsePacket(again)
	if err != nil || seq2 != seq || ssrc2 != ssrc || !bytes.Equal(msg2, msg) {
		t.Fatalf("re-encoded packet parses to %d %d %x, %v; want %d %d %x", seq2, ssrc2, msg2, err, seq, ssrc, msg)
	}
	if len(again) != len(b) || again[0] != b[0] || !bytes.Equal(again[2:len(again)-crcLen], b[2:len(b)-crcLen]) {
		t.Fatalf("re-encoding changed the packet:\n%x\n%x", b, again)
	}
	if b[1] == 0 && !bytes.Equal(again, b) {
		t.Fatalf("re-encoding changed the CRC:\n%x\n%x", b, again)
	}
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

// Keys for Confirm messages made and opened by the fuzz target.
var (
	fuzzConfirmKey = bytes.Repeat([]byte{0x5a}, 16)
	fuzzConfirmMAC = bytes.Repeat([]byte{0xa5}, 32)
)

// FuzzParseConfirm parses Confirm messages, decrypts them with the target's
// key after setting confirm_mac to match (a mutated body would fail the MAC
// and reach nothing), and checks that what opens re-encodes to a message
// that opens to the same fields; to the same bytes when the unused bits
// (§5.7: 8 reserved bits and the 7 above the signature length) are zero.
func FuzzParseConfirm(f *testing.F) {
	addMessages(f, typeConfirm1)
	addMessages(f, typeConfirm2)
	for i, c := range []Confirm{
		{Part: 1, Flags: FlagAllowClear, CacheExpiry: 0xffffffff},
		{Part: 2, Flags: FlagSASVerified | FlagDisclosure | FlagPBXEnroll, CacheExpiry: 3600, Signature: []byte("PGP sig.")},
		{Part: 1, Signature: make([]byte, 4*0x1ff)},
	} {
		c.IV[0], c.H0[0] = byte(i), byte(i+1)
		b, err := c.encode(sha256New, fuzzConfirmKey, fuzzConfirmMAC)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		for part := 1; part <= 2; part++ {
			c, err := ParseConfirm(msg, part)
			if err != nil {
				continue
			}
			_ = c.open(sha256New, fuzzConfirmKey, fuzzConfirmKey) // must not panic on any body
			m := hmac.New(sha256New, fuzzConfirmMAC)
			m.Write(c.Encrypted)
			copy(c.ConfirmMAC[:], m.Sum(nil))
			if err := c.open(sha256New, fuzzConfirmKey, fuzzConfirmMAC); err != nil {
				continue
			}
			c2 := Confirm{Part: part, IV: c.IV, H0: c.H0, Flags: c.Flags, CacheExpiry: c.CacheExpiry, Signature: c.Signature}
			out, err := c2.encode(sha256New, fuzzConfirmKey, fuzzConfirmMAC)
			if err != nil {
				t.Fatalf("opened Confirm does not re-encode: %v", err)
			}
			back, err := ParseConfirm(out, part)
			if err != nil {
				t.Fatal(err)
			}
			if err := back.open(sha256New, fuzzConfirmKey, fuzzConfirmMAC); err != nil {
				t.Fatalf("re-encoded Confirm does not open: %v", err)
			}
			if back.H0 != c.H0 || back.SigLen != c.SigLen || back.Flags != c.Flags || back.CacheExpiry != c.CacheExpiry || !bytes.Equal(back.Signature, c.Signature) {
				t.Fatalf("round trip changed the Confirm: %+v to %+v", c, back)
			}
			plain := make([]byte, len(c.Encrypted))
			if err := cfbXOR(fuzzConfirmKey, c.IV[:], plain, c.Encrypted, true); err != nil {
				t.Fatal(err)
			}
			if plain[32] == 0 && plain[33]&0xfe == 0 && (!bytes.Equal(out[20:], msg[20:]) || !bytes.Equal(out[12:20], c.ConfirmMAC[:])) {
				t.Fatalf("round trip changed the bytes of a canonical Confirm")
			}
		}
	})
}

// FuzzParseOther parses the short messages; those this engine also sends
// re-encode to the same bytes.
func FuzzParseOther(f *testing.F) {
	addMessages(f, "")
	for _, typ := range []string{typeHelloACK, typeConf2ACK, typeErrorACK, typeClearACK, typeRelayACK} {
		f.Add(ackMessage(typ))
	}
	// A PingACK written out by hand (§5.16), not by the encoder under test.
	pingACK := newMessage(typePingACK, 36)
	copy(pingACK[12:], "1.10\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18\xde\xad\xbe\xef")
	f.Add(pingACK)
	f.Fuzz(func(t *testing.T, msg []byte) {
		if typ, err := ParseAck(msg); err == nil && !bytes.Equal(ackMessage(typ), msg) {
			t.Fatalf("%s re-encodes to other bytes", typ)
		}
		if code, err := ParseError(msg); err == nil && !bytes.Equal(encodeError(code), msg) {
			t.Fatalf("Error %d re-encodes to other bytes", code)
		}
		if p, err := ParsePingACK(msg); err == nil && !bytes.Equal(p.encode(), msg) {
			t.Fatalf("PingACK re-encodes to other bytes")
		}
		_, _ = ParseGoClear(msg)
		_, _ = ParsePing(msg)
		_ = ParseSASrelay(msg)
		_, _ = messageType(msg)
	})
}

// FuzzParseHelloHash parses a=zrtp-hash values, which come from the peer's
// SDP: what parses formats back to a value that parses to the same hash.
func FuzzParseHelloHash(f *testing.F) {
	hello := handshakeMessages(f)[0]
	_, _, msg, _ := ParsePacket(hello)
	f.Add(FormatHelloHash(msg))
	f.Add("a=zrtp-hash:" + FormatHelloHash(msg))
	f.Add(strings.Repeat("ab", 32))
	f.Add("1.10  " + strings.Repeat("0", 63))
	f.Add("1.00 " + strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, attr string) {
		h, err := parseHelloHash(attr)
		if err != nil {
			return
		}
		if len(h) != sha256.Size {
			t.Fatalf("%d-byte hash", len(h))
		}
		back, err := parseHelloHash(Version + " " + hex.EncodeToString(h))
		if err != nil || !bytes.Equal(back, h) {
			t.Fatalf("formatted hash parses to %x, %v; want %x", back, err, h)
		}
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
