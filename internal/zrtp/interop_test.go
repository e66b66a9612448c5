package zrtp

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func TestHelloLayout(t *testing.T) {
	e, err := New(Config{ZID: zidAlice, Rand: testRand(1)})
	if err != nil {
		t.Fatal(err)
	}
	m := e.hello.raw
	n := len(DefaultHashes) + len(DefaultCiphers) + len(DefaultAuthTags) + len(DefaultKeyAgreements) + len(DefaultSASTypes)
	if len(m) != 4*(22+n) || binary.BigEndian.Uint16(m[2:4]) != uint16(22+n) {
		t.Fatalf("Hello length %d bytes, field %d", len(m), binary.BigEndian.Uint16(m[2:4]))
	}
	for _, c := range []struct {
		off  int
		want string
	}{
		{0, "\x50\x5a"},
		{4, "Hello   "},
		{12, "1.10"},
		{16, "PhoneX Go       "},
		{64, string(zidAlice[:])},
		{76, "\x00\x02\x22\x62"}, // flags 0, hc=2 cc=2 ac=2 kc=6 sc=2
		{80, "S256S384AES1AES3HS32HS80X2K7X255E255DH3kEC25MultB32 B256"},
	} {
		if got := string(m[c.off : c.off+len(c.want)]); got != c.want {
			t.Errorf("offset %d: %q, want %q", c.off, got, c.want)
		}
	}
	if !bytes.Equal(m[32:64], e.chain[3][:]) {
		t.Error("H3 not at offset 32")
	}
	if !checkTrailingMAC(m, e.chain[2][:]) {
		t.Error("Hello MAC is not keyed by H2")
	}
	if h := e.HelloHash(); len(h) != 5+64 || h[:5] != "1.10 " {
		t.Errorf("HelloHash %q", h)
	}
}

// bzrtpLikeHello builds a Hello as Linphone's bzrtp offers it: X255, X448,
// DH3k, DH2k and Mult; S256/S384; AES1/AES3; HS32/HS80; B32/B256.
func bzrtpLikeHello(t *testing.T, zid ZID, h3, h2 []byte) []byte {
	h := &Hello{
		ZID:           zid,
		Hashes:        []Algo{S256, S384},
		Ciphers:       []Algo{AES1, AES3},
		AuthTags:      []Algo{HS32, HS80},
		KeyAgreements: []Algo{X255, mkAlgo("X448"), DH3k, DH2k, Mult},
		SASTypes:      []Algo{B32, B256},
	}
	copy(h.Version[:], "1.10")
	copy(h.ClientID[:], "LINPHONE-ZRTPCPP")
	copy(h.H3[:], h3)
	m, err := h.encode(h2)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNegotiateWithBzrtpLikePeer(t *testing.T) {
	var h0 [32]byte
	h0[0] = 9
	h1 := sha256Sum(h0[:])
	h2 := sha256Sum(h1[:])
	h3 := sha256Sum(h2[:])
	peer := bzrtpLikeHello(t, zidBob, h3[:], h2[:])

	for _, c := range []struct {
		name string
		kas  []Algo
		want Algo
	}{
		{"defaults", nil, X255},
		{"DH3k only", []Algo{DH3k}, DH3k},
		{"EC25 first", []Algo{EC25, DH3k}, DH3k}, // bzrtp never has EC25
	} {
		t.Run(c.name, func(t *testing.T) {
			e, err := New(Config{ZID: zidAlice, SSRC: 1, Rand: testRand(2), KeyAgreements: c.kas})
			if err != nil {
				t.Fatal(err)
			}
			e.Start(t0)
			if _, err := e.HandlePacket(t0, EncodePacket(1, 2, peer)); err != nil {
				t.Fatal(err)
			}
			r, err := e.HandlePacket(t0, EncodePacket(2, 2, ackMessage(typeHelloACK)))
			if err != nil || len(r.Packets) != 1 {
				t.Fatalf("no Commit: %v", err)
			}
			_, _, msg, _ := ParsePacket(r.Packets[0])
			cm, err := ParseCommit(msg)
			if err != nil {
				t.Fatal(err)
			}
			if cm.KeyAgreement != c.want || cm.Hash != S256 || cm.Cipher != AES1 || cm.AuthTag != HS32 || cm.SAS != B32 {
				t.Fatalf("Commit %s %s %s %s %s", cm.KeyAgreement, cm.Hash, cm.Cipher, cm.AuthTag, cm.SAS)
			}
			if len(msg) != 29*4 || binary.BigEndian.Uint16(msg[2:4]) != 29 {
				t.Fatalf("DH Commit of %d bytes", len(msg))
			}
		})
	}
}

func TestRefuseUnofferedAlgorithm(t *testing.T) {
	// A Commit for an algorithm we did not offer gets the matching error.
	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1, Ciphers: []Algo{AES3}}, 1)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2, Ciphers: []Algo{AES1}, Passive: true}, 2)
	// AES1 is mandatory, so alice may still pick it: the exchange works.
	run(t, &link{}, a, b, 10e9)
	checkAgreement(t, a, b)
	if a.secure.Cipher != AES1 {
		t.Fatalf("cipher %s", a.secure.Cipher)
	}
	// EC25 is optional: a Commit for it to a peer that did not list it fails.
	x := newParty(t, "x", Config{ZID: zidAlice, SSRC: 1, KeyAgreements: []Algo{EC25}}, 3)
	y := newParty(t, "y", Config{ZID: zidBob, SSRC: 2, KeyAgreements: []Algo{X255}, Passive: true}, 4)
	run(t, &link{}, x, y, 10e9)
	checkAgreement(t, x, y)
	if x.secure.KeyAgreement != DH3k {
		t.Fatalf("fell back to %s, want the mandatory DH3k", x.secure.KeyAgreement)
	}
}
