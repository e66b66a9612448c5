package sipua

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/zrtp"
)

// testDevice is a device identity with a directory of the devices it has
// pinned, as a profile's contact list would hold them.
type testDevice struct {
	name   string
	key    crypto.Signer
	ident  []byte // messaging identity encoding
	pinned map[string]*testDevice
	// forge makes Sign use another key than the one the peer pinned.
	forge bool
	// changed lists devices with a pending key-change notice.
	changed []string
}

func newTestDevice(t *testing.T, name string) *testDevice {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kex := make([]byte, 32)
	rand.Read(kex)
	return &testDevice{name: name, key: key, ident: MessagingIdentity(pub, kex), pinned: map[string]*testDevice{}}
}

func (d *testDevice) Device() string { return d.name }

func (d *testDevice) Sign(msg []byte) ([]byte, error) {
	if d.forge {
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		return keys.Sign(other, msg)
	}
	return keys.Sign(d.key, msg)
}

func (d *testDevice) VerifyPeer(device string, msg, sig []byte) (PeerIdentity, error) {
	p, ok := d.pinned[device]
	if !ok {
		return PeerIdentity{}, ErrUnknownSigner
	}
	if err := keys.Verify(p.key.Public(), msg, sig); err != nil {
		return PeerIdentity{}, err
	}
	return PeerIdentity{AuxSecret: MessagingAuxSecret(d.ident, p.ident), KeySHA256: "keys-of-" + device}, nil
}

func (d *testDevice) ChangedKeys(account string) ([]string, error) {
	var out []string
	for _, c := range d.changed {
		if strings.HasPrefix(c, account+"/") {
			out = append(out, c)
		}
	}
	return out, nil
}

func TestSignedHash(t *testing.T) {
	alpha, bravo := newTestDevice(t, "alpha@example.org/a1"), newTestDevice(t, "bravo@example.org/b1")
	alpha.pinned[bravo.name] = bravo
	hash := "1.10 " + strings.Repeat("ab", 32)
	stmt := SignedHash{Role: RoleOffer, From: "alpha@example.org", To: "bravo@example.org", CallID: "c1", SessionID: 7, ZRTPHash: hash}
	good, err := SignHash(bravo, stmt)
	if err != nil {
		t.Fatal(err)
	}
	other := newTestDevice(t, bravo.name) // same name, another key
	wrongKey, _ := SignHash(other, stmt)
	stranger := newTestDevice(t, "carol@example.org/c1")
	unknown, _ := SignHash(stranger, stmt)

	for _, tt := range []struct {
		name   string
		sig    *HashSig
		change func(*SignedHash)
		want   SignedHashState
	}{
		{"valid", good, nil, SignedHashVerified},
		{"missing", nil, nil, SignedHashMissing},
		{"wrong key", wrongKey, nil, SignedHashInvalid},
		{"replayed into another Call-ID", good, func(s *SignedHash) { s.CallID = "c2" }, SignedHashInvalid},
		{"another SDP session", good, func(s *SignedHash) { s.SessionID = 8 }, SignedHashInvalid},
		{"tampered hash", good, func(s *SignedHash) { s.ZRTPHash = "1.10 " + strings.Repeat("cd", 32) }, SignedHashInvalid},
		{"answer role", good, func(s *SignedHash) { s.Role = RoleAnswer }, SignedHashInvalid},
		{"other caller", good, func(s *SignedHash) { s.From = "mallory@example.org" }, SignedHashInvalid},
		{"other callee", good, func(s *SignedHash) { s.To = "carol@example.org" }, SignedHashInvalid},
		{"bound to a peer device", good, func(s *SignedHash) { s.Peer = "alpha@example.org/a1" }, SignedHashInvalid},
		{"claims another signer", &HashSig{Device: bravo.name, Sig: unknown.Sig}, nil, SignedHashInvalid},
		{"signer not a contact", unknown, nil, SignedHashUnknown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := stmt
			if tt.change != nil {
				tt.change(&s)
			}
			got, p, err := CheckHashSig(alpha, tt.sig, s)
			if got != tt.want {
				t.Fatalf("state %s (%v), want %s", got, err, tt.want)
			}
			if got == SignedHashVerified && len(p.AuxSecret) != 32 {
				t.Errorf("no auxsecret for a verified device")
			}
			if got == SignedHashInvalid && err == nil {
				t.Error("invalid without a reason")
			}
		})
	}
	// Case in the hex digits of the hash does not matter (§8.1 values
	// are compared normalised).
	s := stmt
	s.ZRTPHash = strings.ToUpper(hash)
	if got, _, err := CheckHashSig(alpha, good, s); got != SignedHashVerified {
		t.Errorf("upper-case hash: %s %v", got, err)
	}
}

func TestHashSigAttribute(t *testing.T) {
	sig := bytes.Repeat([]byte{0xa5}, 64)
	h := HashSig{Device: "alpha@example.org/a1", Sig: sig}
	got, err := ParseHashSig(h.String())
	if err != nil || got.Device != h.Device || !bytes.Equal(got.Sig, sig) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	for _, bad := range []string{
		"", "v1", "v1 alpha@example.org/a1", "v2 alpha@example.org/a1 AAAA",
		"v1 alpha@example.org AAAA", "v1 @example.org/a1 AAAA", "v1 alpha@example.org/a1 !!!!",
		"v1 alpha@example.org/a1 AAAA extra", "v1 alpha@example.org/a1 " + strings.Repeat("A", 4000),
		"v1 alpha@ex\x01ample.org/a1 AAAA",
	} {
		if _, err := ParseHashSig(bad); !errors.Is(err, ErrBadHashSig) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// In SDP: written beside a=zrtp-hash, read back; a damaged one is
	// kept as an error, not a failure of the description.
	m := Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 4000, Codecs: []Codec{CodecPCMU}, ZRTPHash: "1.10 " + strings.Repeat("0f", 32),
		SessionID: 1, Version: 1, HashSig: &h}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "a="+HashSigAttr+":v1 alpha@example.org/a1 ") {
		t.Fatalf("no attribute in\n%s", b)
	}
	back, err := ParseMedia(b)
	if err != nil || back.HashSig == nil || !bytes.Equal(back.HashSig.Sig, sig) || back.HashSigErr != nil {
		t.Fatalf("parse: %+v %v", back, err)
	}
	damaged := strings.Replace(string(b), "a="+HashSigAttr+":v1", "a="+HashSigAttr+":v9", 1)
	back, err = ParseMedia([]byte(damaged))
	if err != nil || back.HashSig != nil || !errors.Is(back.HashSigErr, ErrBadHashSig) {
		t.Fatalf("damaged: %+v %v", back, err)
	}
}

func TestMessagingAuxSecretOrder(t *testing.T) {
	a, b := []byte("identity of a"), []byte("identity of b")
	if !bytes.Equal(MessagingAuxSecret(a, b), MessagingAuxSecret(b, a)) {
		t.Fatal("auxsecret depends on the order of the devices")
	}
	if bytes.Equal(MessagingAuxSecret(a, b), MessagingAuxSecret(a, []byte("identity of c"))) {
		t.Fatal("auxsecret does not depend on the keys")
	}
}

// trustStore is a FileStore that also records messaging trust.
type trustStore struct {
	*FileStore
	mu  sync.Mutex
	set map[string]Trust
}

func (s *trustStore) SetMessagingTrust(device, keySHA string, t Trust) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set[device+" "+keySHA] = t
	return nil
}

func (s *trustStore) get(k string) Trust {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.set[k]
}

// TestSignedHashCall: two devices that pinned each other call on
// loopback: each verifies the other's signed zrtp-hash, the Hello matches
// it, and the messaging identities are bound (auxsecret matched); a
// confirmed SAS verifies the peer's messaging identity, a rejected one
// marks it unsafe. A forged signature is reported invalid and the call
// unsafe; a peer without a profile gives missing.
func TestSignedHashCall(t *testing.T) {
	dir := t.TempDir()
	alpha, bravo := newTestDevice(t, "alpha@example.org/a1"), newTestDevice(t, "bravo@example.org/b1")
	alpha.pinned[bravo.name], bravo.pinned[alpha.name] = bravo, alpha
	sa := &trustStore{FileStore: cacheAt(t, filepath.Join(dir, "a")), set: map[string]Trust{}}
	sb := &trustStore{FileStore: cacheAt(t, filepath.Join(dir, "b")), set: map[string]Trust{}}

	call := func(a, b Signer, during func(p pair)) (*SecureInfo, *SecureInfo, pair) {
		p := dialPair(t, "udp", CallOptions{Cache: sa, Signer: a, NoOpus: true}, CallOptions{Cache: sb, Signer: b, NoOpus: true})
		t.Cleanup(func() { p.caller.Hangup(context.Background()) })
		x, y := waitSecure(t, p.callerEvents), waitSecure(t, p.calleeEv)
		zrtpDone(t, p)
		if during != nil {
			during(p)
		}
		p.caller.Hangup(context.Background())
		<-p.callee.Done()
		return x, y, p
	}

	x, y, _ := call(alpha, bravo, func(p pair) {
		if err := p.caller.ConfirmSAS(); err != nil {
			t.Error(err)
		}
		if err := p.callee.RejectSAS(); err != nil {
			t.Error(err)
		}
	})
	for side, s := range map[string]*SecureInfo{"caller": x, "callee": y} {
		if s.SignedHash != SignedHashVerified || s.AuxSecret != AuxMatched || s.HelloHash != HelloHashMatched || s.Trust == TrustUnsafe {
			t.Errorf("%s: %+v", side, s)
		}
	}
	if x.SignedBy != bravo.name || y.SignedBy != alpha.name {
		t.Errorf("signed by %q / %q", x.SignedBy, y.SignedBy)
	}
	if got := sa.get(bravo.name + " keys-of-" + bravo.name); got != TrustVerified {
		t.Errorf("caller confirmed the SAS: messaging trust of bravo %q", got)
	}
	if got := sb.get(alpha.name + " keys-of-" + alpha.name); got != TrustUnsafe {
		t.Errorf("callee rejected the SAS: messaging trust of alpha %q", got)
	}

	// A signature made with another key than the pinned one.
	forger := *bravo
	forger.forge = true
	x, y, p := call(alpha, &forger, nil)
	if x.SignedHash != SignedHashInvalid || x.Trust != TrustUnsafe || x.AuxSecret != AuxNone {
		t.Errorf("forged answer: %+v", x)
	}
	if a := p.callerEvents.has(EventAlert); a == nil || !strings.Contains(a.Reason, "INVALID") {
		t.Errorf("no alert for the forged signature: %+v", a)
	}
	if y.SignedHash != SignedHashVerified {
		t.Errorf("callee of the forged answer: %+v", y)
	}
	// The caller binds nothing with an answer it could not verify; the
	// callee, which did bind, sees the auxsecret mismatch and calls the
	// call unsafe.
	if y.AuxSecret != AuxMismatch || y.Trust != TrustUnsafe {
		t.Errorf("callee's binding with an unverified caller: %+v", y)
	}

	// A peer without a profile (fresh caches: the rejected SAS above
	// left the retained secrets out of step, which is unsafe on its own).
	sa = &trustStore{FileStore: cacheAt(t, filepath.Join(dir, "a2")), set: map[string]Trust{}}
	sb = &trustStore{FileStore: cacheAt(t, filepath.Join(dir, "b2")), set: map[string]Trust{}}
	x, y, _ = call(alpha, nil, nil)
	if x.SignedHash != SignedHashMissing || x.SignedHashDetail == "" || x.Trust == TrustUnsafe {
		t.Errorf("unsigned answer: %+v", x)
	}
	if y.SignedHash != SignedHashOff {
		t.Errorf("callee without a profile: %+v", y)
	}
}

// FuzzParseHashSig: any attribute value gives a signature or
// ErrBadHashSig, never a panic, and what parses renders back the same.
func FuzzParseHashSig(f *testing.F) {
	f.Add("v1 alpha@example.org/a1 " + strings.Repeat("AAAA", 22))
	f.Add("v1 alpha@example.org/a1 AAAA")
	f.Add("v1 a@b/c ////")
	f.Add("v2 alpha@example.org/a1 AAAA")
	f.Add("v1  alpha@example.org/a1 AAAA")
	f.Add("v1 alpha@example.org AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := ParseHashSig(v)
		if err != nil {
			if !errors.Is(err, ErrBadHashSig) {
				t.Fatalf("%q: unexpected error %v", v, err)
			}
			return
		}
		again, err := ParseHashSig(h.String())
		if err != nil || again.Device != h.Device || !bytes.Equal(again.Sig, h.Sig) {
			t.Fatalf("%q: round trip %+v %v", v, again, err)
		}
	})
}

// TestFillTrust: what the secure event says about the peer's identity,
// and which findings make the call unsafe (a Hello that did not match the
// signed hash is an attack indicator, RFC 6189 §8.1).
func TestFillTrust(t *testing.T) {
	hash := "1.10 " + strings.Repeat("ab", 32)
	for _, tt := range []struct {
		name      string
		state     SignedHashState
		auxSet    bool
		auxMis    bool
		remote    string
		helloBad  bool
		wantHello string
		wantAux   string
		unsafe    bool
	}{
		{"all verified", SignedHashVerified, true, false, hash, false, HelloHashMatched, AuxMatched, false},
		{"forged Hello seen", SignedHashVerified, true, false, hash, true, HelloHashMismatch, AuxMatched, true},
		{"auxsecret mismatch", SignedHashVerified, true, true, hash, false, HelloHashMatched, AuxMismatch, true},
		{"invalid signature", SignedHashInvalid, false, false, hash, false, HelloHashMatched, AuxNone, true},
		{"standard phone", SignedHashMissing, false, true, hash, false, HelloHashMatched, AuxNone, false},
		{"no zrtp-hash", SignedHashMissing, false, false, "", false, HelloHashNotSignalled, AuxNone, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Call{}
			c.trust.state, c.trust.auxSet = tt.state, tt.auxSet
			info := &SecureInfo{Trust: TrustVerified}
			c.fillTrust(info, &zrtp.Secure{AuxMismatch: tt.auxMis}, &mediaState{remoteHash: tt.remote, hashAlert: tt.helloBad})
			if info.HelloHash != tt.wantHello || info.AuxSecret != tt.wantAux || (info.Trust == TrustUnsafe) != tt.unsafe || info.SignedHash != tt.state {
				t.Errorf("%+v", info)
			}
		})
	}
}

// BenchmarkSignedHash: the cost a call adds to its setup, per side: one
// signature of our zrtp-hash and one verification of the peer's.
func BenchmarkSignedHash(b *testing.B) {
	for _, tt := range []struct {
		name  string
		suite keys.Suite
		bits  int
	}{{"ed25519", keys.SuiteEC, 0}, {"rsa-3072", keys.SuiteRSA, 3072}} {
		b.Run(tt.name, func(b *testing.B) {
			k, err := keys.Generate(tt.suite, tt.bits)
			if err != nil {
				b.Fatal(err)
			}
			d := &testDevice{name: "bravo@example.org/b1", key: k.Sign, ident: []byte("b"), pinned: map[string]*testDevice{}}
			v := &testDevice{name: "alpha@example.org/a1", ident: []byte("a"), pinned: map[string]*testDevice{d.name: d}}
			s := SignedHash{Role: RoleAnswer, From: "alpha@example.org", To: "bravo@example.org", CallID: "c1", SessionID: 7,
				ZRTPHash: "1.10 " + strings.Repeat("ab", 32)}
			b.ResetTimer()
			for b.Loop() {
				hs, err := SignHash(d, s)
				if err != nil {
					b.Fatal(err)
				}
				if st, _, err := CheckHashSig(v, hs, s); st != SignedHashVerified {
					b.Fatal(st, err)
				}
			}
		})
	}
}

// TestOfferSaysKeyChanged: calling an address that names a contact
// account (a call through the cluster) alerts about that account's
// changed device keys before the INVITE leaves, and the offer is signed
// for that address and Call-ID.
func TestOfferSaysKeyChanged(t *testing.T) {
	alpha, bravo := newTestDevice(t, "alpha@example.org/a1"), newTestDevice(t, "bravo@example.org/b1")
	bravo.pinned[alpha.name] = alpha
	alpha.changed = []string{"bravo@example.org/b1", "carol@example.org/c1"}
	rec := newRecorder()
	hash := "1.10 " + strings.Repeat("ab", 32)
	c := &Call{log: slog.New(slog.DiscardHandler), opts: CallOptions{Signer: alpha, OnEvent: rec.on},
		local: Media{Addr: netip.MustParseAddr("127.0.0.1"), Port: 4000, Codecs: []Codec{CodecPCMU}, ZRTPHash: hash, SessionID: 9, Version: 9}}
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bravo", Host: "example.org"})
	from := sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alpha", Host: "example.org"}, Params: sip.NewParams()}
	req.AppendHeader(&from)
	body, err := c.signOffer(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 1 || rec.events[0].Type != EventAlert || !strings.Contains(rec.events[0].Reason, "key of bravo@example.org/b1 changed") {
		t.Fatalf("events before the INVITE: %+v", rec.events)
	}
	m, err := ParseMedia(body)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := CheckHashSig(bravo, m.HashSig, SignedHash{Role: RoleOffer, From: "alpha@example.org", To: "bravo@example.org",
		CallID: req.CallID().Value(), SessionID: 9, ZRTPHash: hash})
	if st != SignedHashVerified {
		t.Fatalf("offer signature: %s %v", st, err)
	}
}
