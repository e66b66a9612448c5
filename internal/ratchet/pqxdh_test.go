package ratchet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/cryptotest"
)

var update = flag.Bool("update", false, "rewrite testdata vectors")

// device is one test device: identity, prekeys and the key service's view.
type device struct {
	id    DeviceID
	ik    *IdentityKeyPair
	store *MemoryPrekeyStore
	spk   *SignedPrekeyPair
	opks  []*OneTimePrekeyPair
	pq    []*PQPrekeyPair // one-time
	last  *PQPrekeyPair   // last resort
	r     io.Reader
}

func newDevice(t testing.TB, id DeviceID, seed uint64, oneTime int) *device {
	t.Helper()
	r := seeded(seed)
	d := &device{id: id, ik: newIdentity(t, r), store: NewMemoryPrekeyStore(), r: r}
	var err error
	if d.spk, err = NewSignedPrekey(r, d.ik, 1); err != nil {
		t.Fatal(err)
	}
	d.store.AddSignedPrekey(d.spk)
	if d.last, err = NewPQPrekey(r, d.ik, 1000, true); err != nil {
		t.Fatal(err)
	}
	d.store.AddPQPrekey(d.last)
	for i := range oneTime {
		opk, err := NewOneTimePrekey(r, uint32(100+i))
		if err != nil {
			t.Fatal(err)
		}
		pq, err := NewPQPrekey(r, d.ik, uint32(2000+i), false)
		if err != nil {
			t.Fatal(err)
		}
		d.opks = append(d.opks, opk)
		d.pq = append(d.pq, pq)
		d.store.AddOneTimePrekey(opk)
		d.store.AddPQPrekey(pq)
	}
	return d
}

// bundle plays the key service: it hands out each one-time prekey once and
// falls back to the last-resort ML-KEM prekey.
func (d *device) bundle() *PrekeyBundle {
	b := &PrekeyBundle{
		Identity:       d.ik.Public(),
		SignedPrekeyID: d.spk.ID, SignedPrekey: d.spk.Key.PublicKey(), SignedPrekeySig: d.spk.Signature,
		PQPrekeyID: d.last.ID, PQPrekey: d.last.Key.EncapsulationKey(), PQPrekeySig: d.last.Signature, PQPrekeyLastResort: true,
	}
	if len(d.opks) > 0 {
		b.OneTimePrekeyID, b.OneTimePrekey = d.opks[0].ID, d.opks[0].Key.PublicKey()
		d.opks = d.opks[1:]
	}
	if len(d.pq) > 0 {
		b.PQPrekeyID, b.PQPrekey, b.PQPrekeySig, b.PQPrekeyLastResort = d.pq[0].ID, d.pq[0].Key.EncapsulationKey(), d.pq[0].Signature, false
		d.pq = d.pq[1:]
	}
	return b
}

func TestPQXDHSession(t *testing.T) {
	alice := newDevice(t, "alice@x/1", 1, 0)
	bob := newDevice(t, "bob@x/1", 2, 2)
	b := bob.bundle()
	enc, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	b, err = ParsePrekeyBundle(enc) // through the key service's bytes
	if err != nil {
		t.Fatal(err)
	}
	as, im, err := InitiateSession(alice.r, alice.ik, b)
	if err != nil {
		t.Fatal(err)
	}
	if !im.HasOneTimePrekey || im.OneTimePrekeyID != 100 || im.PQPrekeyID != 2000 || im.SignedPrekeyID != 1 {
		t.Fatalf("initial message ids: %+v", im)
	}
	m1 := mustEncrypt(t, as, "first")
	m2 := mustEncrypt(t, as, "second")

	parsed, err := ParseMessage(m1)
	if err != nil || parsed.Initial == nil || !parsed.Initial.Identity.Equal(alice.ik.Public()) {
		t.Fatalf("first message carries no initial message: %v", err)
	}
	bs, pt, err := AcceptSession(bob.r, bob.ik, bob.store, m1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(pt) != "first" {
		t.Fatalf("first = %q", pt)
	}
	if x, pq := bob.store.OneTimePrekeys(); x != 1 || pq != 1 {
		t.Fatalf("one-time prekeys left: %d x25519, %d ml-kem; want 1, 1", x, pq)
	}
	if !bytes.Equal(as.AssociatedData(), bs.AssociatedData()) ||
		!bytes.Equal(as.AssociatedData(), append(alice.ik.Public().Encode(), bob.ik.Public().Encode()...)) {
		t.Fatal("AD is not Encode(IK_A) || Encode(IK_B)")
	}

	// The second message repeats the initial message: it belongs to the
	// existing session, and a second accept fails (one-time prekey used).
	p2, _ := ParseMessage(m2)
	if !bs.MatchesInitial(p2.Initial) {
		t.Fatal("second message does not match the session")
	}
	if _, _, err := AcceptSession(bob.r, bob.ik, bob.store, m2, nil); !errors.Is(err, ErrPrekeyNotFound) {
		t.Fatalf("second accept with a used one-time prekey: %v", err)
	}
	mustDecrypt(t, bs, m2, "second")

	// After Bob's reply Alice stops sending the initial message.
	mustDecrypt(t, as, mustEncrypt(t, bs, "reply"), "reply")
	m3 := mustEncrypt(t, as, "third")
	if p3, _ := ParseMessage(m3); p3.Initial != nil {
		t.Fatal("initial message still attached after a reply")
	}
	mustDecrypt(t, bs, m3, "third")
}

func TestPQXDHLastResort(t *testing.T) {
	alice := newDevice(t, "alice@x/1", 3, 0)
	bob := newDevice(t, "bob@x/1", 4, 0)
	b := bob.bundle()
	if b.OneTimePrekey != nil || !b.PQPrekeyLastResort {
		t.Fatal("expected a bundle without one-time prekeys")
	}
	as, im, err := InitiateSession(alice.r, alice.ik, b)
	if err != nil {
		t.Fatal(err)
	}
	if im.HasOneTimePrekey {
		t.Fatal("one-time prekey flag set")
	}
	bs, pt, err := AcceptSession(bob.r, bob.ik, bob.store, mustEncrypt(t, as, "hi"), nil)
	if err != nil || string(pt) != "hi" {
		t.Fatalf("accept: %q, %v", pt, err)
	}
	if _, err := bob.store.PQPrekey(bob.last.ID); err != nil {
		t.Fatal("last-resort ML-KEM prekey was deleted")
	}
	mustDecrypt(t, as, mustEncrypt(t, bs, "hello"), "hello")
}

func TestPQXDHRejects(t *testing.T) {
	alice := newDevice(t, "alice@x/1", 5, 0)
	bob := newDevice(t, "bob@x/1", 6, 3)
	mallory := newDevice(t, "mallory@x/1", 7, 0)
	good := bob.bundle() // with one-time prekeys

	for name, mutate := range map[string]func(*PrekeyBundle){
		"signed prekey signature": func(b *PrekeyBundle) { b.SignedPrekeySig = bytes.Clone(b.SignedPrekeySig); b.SignedPrekeySig[0] ^= 1 },
		"pq prekey signature":     func(b *PrekeyBundle) { b.PQPrekeySig = bytes.Clone(b.PQPrekeySig); b.PQPrekeySig[5] ^= 1 },
		"substituted signed prekey": func(b *PrekeyBundle) {
			b.SignedPrekey = mallory.spk.Key.PublicKey()
		},
		"substituted pq prekey": func(b *PrekeyBundle) { b.PQPrekey = mallory.last.Key.EncapsulationKey() },
		"identity binding": func(b *PrekeyBundle) {
			b.Identity.DH = mallory.ik.Public().DH
		},
	} {
		b := bob.bundle()
		mutate(b)
		if _, _, err := InitiateSession(alice.r, alice.ik, b); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// A tampered initial message consumes nothing and creates nothing.
	as, _, err := InitiateSession(alice.r, alice.ik, good)
	if err != nil {
		t.Fatal(err)
	}
	m := mustEncrypt(t, as, "x")
	x0, pq0 := bob.store.OneTimePrekeys()
	for _, off := range []int{2 + 2 + 2 + 140, 2 + 2 + initialSize - 1, 2 + 2 + 2 + identityEncodedSize + 5} {
		bad := bytes.Clone(m)
		bad[off] ^= 0x40
		if _, _, err := AcceptSession(bob.r, bob.ik, bob.store, bad, nil); err == nil {
			t.Fatalf("tampered byte %d accepted", off)
		}
	}
	if x, pq := bob.store.OneTimePrekeys(); x != x0 || pq != pq0 {
		t.Fatal("a rejected initial message consumed prekeys")
	}
	if _, pt, err := AcceptSession(bob.r, bob.ik, bob.store, m, nil); err != nil || string(pt) != "x" {
		t.Fatalf("untampered: %q, %v", pt, err)
	}
	if _, _, err := AcceptSession(bob.r, bob.ik, bob.store, m, nil); !errors.Is(err, ErrPrekeyNotFound) {
		t.Fatalf("replayed initial message: %v", err)
	}
	// A plain ratchet message is not an initial message.
	if _, _, err := AcceptSession(bob.r, bob.ik, bob.store, []byte{1, 0}, nil); err == nil {
		t.Fatal("accepted garbage")
	}
}

func TestTrustOnFirstUse(t *testing.T) {
	ts := NewMemoryTrustStore()
	bob := newDevice(t, "bob@x/1", 8, 0)
	other := newDevice(t, "bob@x/1", 9, 0)
	if err := CheckIdentity(ts, bob.id, bob.bundle().Identity); err != nil {
		t.Fatal(err)
	}
	if err := CheckIdentity(ts, bob.id, bob.ik.Public()); err != nil {
		t.Fatal(err)
	}
	err := CheckIdentity(ts, bob.id, other.ik.Public())
	var ice *IdentityChangedError
	if !errors.Is(err, ErrIdentityChanged) || !errors.As(err, &ice) || ice.Pinned != bob.ik.Public().Fingerprint() {
		t.Fatalf("changed identity: %v", err)
	}
	// Same signing key with another DH key: still a change (and the
	// binding fails first).
	mixed := bob.ik.Public()
	mixed.DH = other.ik.Public().DH
	if err := CheckIdentity(ts, bob.id, mixed); !errors.Is(err, ErrSignature) {
		t.Fatalf("unbound DH key: %v", err)
	}
	// The initial message's identity goes through the same check.
	alice := newDevice(t, "alice@x/1", 10, 0)
	as, im, err := InitiateSession(alice.r, alice.ik, bob.bundle())
	if err != nil {
		t.Fatal(err)
	}
	_ = as
	if err := CheckIdentity(ts, alice.id, im.Identity); err != nil {
		t.Fatal(err)
	}
	impostor := newDevice(t, "alice@x/1", 11, 0)
	if err := CheckIdentity(ts, alice.id, impostor.ik.Public()); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("impostor: %v", err)
	}
	if s := bob.ik.String(); bytes.Contains([]byte(s), bob.ik.signing) {
		t.Fatal("identity String leaks the private key")
	}
}

// TestPQXDHVector checks a full key agreement and first exchange from fixed
// seeds against testdata/pqxdh_vector.json (regenerate with -update after a
// deliberate format change). The ML-KEM encapsulation randomness comes from
// testing/cryptotest's global deterministic source.
func TestPQXDHVector(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
	alice := newDevice(t, "alice@x/1", 21, 0)
	bob := newDevice(t, "bob@x/1", 22, 1)
	bobOPK, bobPQ := bob.opks[0], bob.pq[0]
	b := bob.bundle()
	bundleBytes, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	as, im, err := InitiateSession(alice.r, alice.ik, b)
	if err != nil {
		t.Fatal(err)
	}
	imBytes, err := im.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	m1 := mustEncrypt(t, as, "PQXDH known answer")
	bs, pt, err := AcceptSession(bob.r, bob.ik, bob.store, m1, []byte(nil))
	if err != nil || string(pt) != "PQXDH known answer" {
		t.Fatalf("accept: %q %v", pt, err)
	}
	reply := mustEncrypt(t, bs, "reply")
	mustDecrypt(t, as, reply, "reply")
	got := map[string]string{
		"bundle":          hex.EncodeToString(bundleBytes),
		"initial_message": hex.EncodeToString(imBytes),
		"first_message":   hex.EncodeToString(m1),
		"reply":           hex.EncodeToString(reply),
		"root_key_alice":  hex.EncodeToString(as.st.rk[:]),
		// Bob's private keys, for the independent check in
		// testdata/pqxdh_crosscheck.py.
		"bob_identity_dh":   hex.EncodeToString(bob.ik.dh.Bytes()),
		"bob_identity_sig":  hex.EncodeToString(bob.ik.Public().Signing),
		"bob_binding":       hex.EncodeToString(bob.ik.Public().Binding),
		"bob_signed_prekey": hex.EncodeToString(bob.spk.Key.Bytes()),
		"bob_one_time":      hex.EncodeToString(bobOPK.Key.Bytes()),
		"bob_pq_seed":       hex.EncodeToString(bobPQ.Key.Bytes()),
	}
	const path = "testdata/pqxdh_vector.json"
	if *update {
		out, _ := json.MarshalIndent(got, "", " ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]string
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	for k, v := range got {
		if want[k] != v {
			t.Errorf("%s differs from the recorded vector", k)
		}
	}

	// testdata/pqxdh_crosscheck.py recomputed the responder's side of this
	// vector with Python (cryptography's X25519 and ML-KEM-768, hmac and
	// hashlib) and decrypted the first message.
	raw, err = os.ReadFile("testdata/pqxdh_crosscheck.json")
	if err != nil {
		t.Fatal(err)
	}
	var cross map[string]string
	if err := json.Unmarshal(raw, &cross); err != nil {
		t.Fatal(err)
	}
	if cross["first_message"] != got["first_message"] {
		t.Fatal("pqxdh_crosscheck.json is stale: rerun testdata/pqxdh_crosscheck.py")
	}
	if cross["plaintext"] != hex.EncodeToString([]byte("PQXDH known answer")) {
		t.Fatalf("Python decrypted %q", cross["plaintext"])
	}
}

func TestPrekeyRedaction(t *testing.T) {
	bob := newDevice(t, "bob@x/1", 30, 1)
	for _, v := range []fmt.Stringer{bob.spk, bob.opks[0], bob.pq[0], bob.ik} {
		s := fmt.Sprintf("%v %+v %s", v, v, v)
		if !strings.Contains(s, "REDACTED") {
			t.Errorf("%T not redacted: %s", v, s)
		}
	}
}

// TestLastResortReplay shows the PQXDH replay case without a one-time
// prekey: a second accept of the same initial message succeeds, so the
// client must recognise it through MatchesInitial.
func TestLastResortReplay(t *testing.T) {
	alice := newDevice(t, "alice@x/1", 31, 0)
	bob := newDevice(t, "bob@x/1", 32, 0)
	as, _, err := InitiateSession(alice.r, alice.ik, bob.bundle())
	if err != nil {
		t.Fatal(err)
	}
	m := mustEncrypt(t, as, "once")
	bs, _, err := AcceptSession(bob.r, bob.ik, bob.store, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ParseMessage(m)
	if !bs.MatchesInitial(p.Initial) {
		t.Fatal("replayed initial message not recognised")
	}
	other, _, _ := InitiateSession(alice.r, alice.ik, bob.bundle())
	po, _ := ParseMessage(mustEncrypt(t, other, "other"))
	if bs.MatchesInitial(po.Initial) {
		t.Fatal("a different initial message matched")
	}
}
