package ratchet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"testing"
)

// TestKDFVectors checks KDF_RK, KDF_CK, ENCRYPT and the PQXDH KDF against
// values computed independently by testdata/kdf_vectors.py (Python hmac,
// hashlib and the cryptography package).
func TestKDFVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/kdf_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	type hexMap map[string]string
	var v struct {
		KDFRK   hexMap `json:"kdf_rk"`
		KDFCK   hexMap `json:"kdf_ck"`
		Encrypt hexMap `json:"encrypt"`
		PQXDH   hexMap `json:"pqxdh_kdf"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}

	var rk, ck, mk [32]byte
	copy(rk[:], unhex(t, v.KDFRK["rk"]))
	gotRK, gotCK := kdfRK(rk, unhex(t, v.KDFRK["dh_out"]))
	if !bytes.Equal(gotRK[:], unhex(t, v.KDFRK["root_key"])) || !bytes.Equal(gotCK[:], unhex(t, v.KDFRK["chain_key"])) {
		t.Errorf("KDF_RK = %x, %x", gotRK, gotCK)
	}
	copy(ck[:], unhex(t, v.KDFCK["ck"]))
	next, gotMK := kdfCK(ck)
	if !bytes.Equal(gotMK[:], unhex(t, v.KDFCK["message_key"])) || !bytes.Equal(next[:], unhex(t, v.KDFCK["next_chain_key"])) {
		t.Errorf("KDF_CK = %x, %x", next, gotMK)
	}
	copy(mk[:], unhex(t, v.Encrypt["mk"]))
	sealed := seal(mk, unhex(t, v.Encrypt["plaintext"]), unhex(t, v.Encrypt["associated_data"]))
	if !bytes.Equal(sealed, unhex(t, v.Encrypt["sealed"])) {
		t.Errorf("ENCRYPT = %x", sealed)
	}
	pt, err := open(mk, sealed, unhex(t, v.Encrypt["associated_data"]))
	if err != nil || !bytes.Equal(pt, unhex(t, v.Encrypt["plaintext"])) {
		t.Errorf("DECRYPT = %x, %v", pt, err)
	}
	sk := kdfPQXDH(unhex(t, v.PQXDH["km"]))
	if !bytes.Equal(sk[:], unhex(t, v.PQXDH["sk"])) {
		t.Errorf("PQXDH KDF = %x", sk)
	}
}

func TestConversation(t *testing.T) {
	alice, bob := newPair(t, 1)
	if _, err := bob.Encrypt([]byte("too early"), nil); !errors.Is(err, ErrNoSendingChain) {
		t.Fatalf("responder sent before receiving: %v", err)
	}
	for round := range 5 {
		for i := range round + 1 {
			mustDecrypt(t, bob, mustEncrypt(t, alice, fmt.Sprint("a", round, i)), fmt.Sprint("a", round, i))
		}
		for i := range 2 {
			mustDecrypt(t, alice, mustEncrypt(t, bob, fmt.Sprint("b", round, i)), fmt.Sprint("b", round, i))
		}
	}
	// Empty plaintext and caller associated data.
	m, err := alice.Encrypt(nil, []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Decrypt(m, []byte("other")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong associated data: %v", err)
	}
	if pt, err := bob.Decrypt(m, []byte("ctx")); err != nil || len(pt) != 0 {
		t.Fatalf("empty message: %q, %v", pt, err)
	}
}

// TestDeliveryProperty runs random conversations with reordering, loss,
// duplication and replay, and checks that each message decrypts exactly once
// and that every rejected delivery leaves the state unchanged.
func TestDeliveryProperty(t *testing.T) {
	iterations := 60
	if testing.Short() {
		iterations = 10
	}
	for it := range iterations {
		rng := mrand.New(mrand.NewPCG(42, uint64(it)))
		alice, bob := newPair(t, uint64(1000+it))
		type inflight struct {
			msg       []byte
			pt        string
			delivered bool
		}
		sessions := [2]*Session{alice, bob}
		queues := [2][]*inflight{} // queues[i]: messages towards party i
		sent := 0
		// The initiator speaks first.
		for round := range 40 {
			from := rng.IntN(2)
			if round == 0 {
				from = 0
			}
			to := 1 - from
			if sessions[from].CanSend() {
				for range 1 + rng.IntN(5) {
					pt := fmt.Sprintf("m%d", sent)
					sent++
					m, err := sessions[from].Encrypt([]byte(pt), nil)
					if err != nil {
						t.Fatal(err)
					}
					if rng.IntN(10) == 0 {
						continue // lost
					}
					queues[to] = append(queues[to], &inflight{msg: m, pt: pt})
				}
			}
			// Deliver a random number of queued messages, in random order,
			// to both parties.
			for p := range 2 {
				q := queues[p]
				rng.Shuffle(len(q), func(i, j int) { q[i], q[j] = q[j], q[i] })
				n := rng.IntN(len(q) + 1)
				var keep []*inflight
				for i, f := range q {
					if i >= n {
						keep = append(keep, f)
						continue
					}
					before := snapshot(t, sessions[p])
					pt, err := sessions[p].Decrypt(f.msg, nil)
					switch {
					case f.delivered:
						if !errors.Is(err, ErrDuplicate) {
							t.Fatalf("iteration %d: replay of %s: %v", it, f.pt, err)
						}
						if !bytes.Equal(before, snapshot(t, sessions[p])) {
							t.Fatalf("iteration %d: replay changed state", it)
						}
					case err != nil:
						t.Fatalf("iteration %d: deliver %s: %v", it, f.pt, err)
					case string(pt) != f.pt:
						t.Fatalf("iteration %d: got %q want %q", it, pt, f.pt)
					default:
						f.delivered = true
					}
					if rng.IntN(8) == 0 { // duplicated by the network
						keep = append(keep, f)
					}
				}
				queues[p] = keep
			}
		}
	}
}

func TestMaxSkip(t *testing.T) {
	alice, bob := newPair(t, 7, WithMaxSkip(10))
	mustDecrypt(t, bob, mustEncrypt(t, alice, "first"), "first")
	var msgs [][]byte
	for i := range 12 {
		msgs = append(msgs, mustEncrypt(t, alice, fmt.Sprint(i)))
	}
	before := snapshot(t, bob)
	// Message 11 needs 11 skipped keys: one past the bound.
	if _, err := bob.Decrypt(msgs[11], nil); !errors.Is(err, ErrTooManySkipped) {
		t.Fatalf("skip past MAX_SKIP: %v", err)
	}
	if !bytes.Equal(before, snapshot(t, bob)) {
		t.Fatal("rejected message changed state")
	}
	// Message 10 needs exactly 10: allowed.
	mustDecrypt(t, bob, msgs[10], "10")
	if bob.Skipped() != 10 {
		t.Fatalf("skipped = %d", bob.Skipped())
	}
	mustDecrypt(t, bob, msgs[11], "11")
	for i := range 10 {
		mustDecrypt(t, bob, msgs[i], fmt.Sprint(i))
	}
	if bob.Skipped() != 0 {
		t.Fatalf("skipped keys left: %d", bob.Skipped())
	}

	// A new chain whose PN claims a long previous chain is bounded too.
	mustDecrypt(t, alice, mustEncrypt(t, bob, "reply"), "reply")
	mustDecrypt(t, bob, mustEncrypt(t, alice, "x"), "x")
	for range 20 {
		mustEncrypt(t, alice, "lost")
	}
	mustDecrypt(t, alice, mustEncrypt(t, bob, "reply2"), "reply2")
	m := mustEncrypt(t, alice, "after")
	before = snapshot(t, bob)
	if _, err := bob.Decrypt(m, nil); !errors.Is(err, ErrTooManySkipped) {
		t.Fatalf("previous chain past MAX_SKIP: %v", err)
	}
	if !bytes.Equal(before, snapshot(t, bob)) {
		t.Fatal("rejected message changed state")
	}
}

func TestSkippedTotalCap(t *testing.T) {
	alice, bob := newPair(t, 8, WithMaxSkippedKeys(5))
	var msgs [][]byte
	for i := range 9 {
		msgs = append(msgs, mustEncrypt(t, alice, fmt.Sprint(i)))
	}
	mustDecrypt(t, bob, msgs[8], "8") // skips 0..7, keeps 3..7
	if bob.Skipped() != 5 {
		t.Fatalf("skipped = %d, want 5", bob.Skipped())
	}
	for i := range 3 {
		if _, err := bob.Decrypt(msgs[i], nil); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("evicted key %d: %v", i, err)
		}
	}
	for i := 3; i < 8; i++ {
		mustDecrypt(t, bob, msgs[i], fmt.Sprint(i))
	}
}

// TestTamper flips every byte of a message in turn: each variant is
// rejected and leaves the state unchanged; the original still decrypts.
func TestTamper(t *testing.T) {
	alice, bob := newPair(t, 9)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "hello"), "hello")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "hi"), "hi")
	m := mustEncrypt(t, alice, "tamper me")
	before := snapshot(t, bob)
	for i := range m {
		bad := bytes.Clone(m)
		bad[i] ^= 0x01
		if _, err := bob.Decrypt(bad, nil); err == nil {
			t.Fatalf("byte %d flipped: accepted", i)
		}
		if !bytes.Equal(before, snapshot(t, bob)) {
			t.Fatalf("byte %d flipped: state changed", i)
		}
	}
	for _, bad := range [][]byte{m[:len(m)-1], append(bytes.Clone(m), 0), m[:10], nil} {
		if _, err := bob.Decrypt(bad, nil); err == nil {
			t.Fatalf("length %d accepted", len(bad))
		}
	}
	mustDecrypt(t, bob, m, "tamper me")
}

// TestForwardSecrecy checks that a used message key, and the chain keys that
// produced it, are gone from the state.
func TestForwardSecrecy(t *testing.T) {
	alice, bob := newPair(t, 10)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "0"), "0")
	m1, m2 := mustEncrypt(t, alice, "1"), mustEncrypt(t, alice, "2")
	oldCK := bob.st.ckr
	_, mk1 := kdfCK(oldCK)
	mustDecrypt(t, bob, m2, "2") // stores mk1 as skipped
	if !bytes.Contains(snapshot(t, bob), mk1[:]) {
		t.Fatal("skipped key not stored")
	}
	mustDecrypt(t, bob, m1, "1")
	state := snapshot(t, bob)
	if bytes.Contains(state, mk1[:]) || bytes.Contains(state, oldCK[:]) {
		t.Fatal("used message key or old chain key still in state")
	}
	if _, err := bob.Decrypt(m1, nil); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("replay after deletion: %v", err)
	}
}

// TestPostCompromise copies Bob's full state, shows the copy decrypts what
// is sent on the current chains, then shows that one round trip of DH
// ratchet steps locks it out.
func TestPostCompromise(t *testing.T) {
	alice, bob := newPair(t, 11)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "hello"), "hello")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "hi"), "hi")

	stolen := snapshot(t, bob)
	attacker := func() *Session {
		var s Session
		if err := s.UnmarshalBinary(stolen); err != nil {
			t.Fatal(err)
		}
		s.SetRand(seeded(666))
		return &s
	}

	// Still compromised: Alice's current sending chain is known.
	m := mustEncrypt(t, alice, "compromised")
	if pt, err := attacker().Decrypt(m, nil); err != nil || string(pt) != "compromised" {
		t.Fatalf("copy should read the current chain: %q, %v", pt, err)
	}
	mustDecrypt(t, bob, m, "compromised")

	// Bob replies with a fresh ratchet key; Alice answers on a new chain.
	mustDecrypt(t, alice, mustEncrypt(t, bob, "ratchet"), "ratchet")
	for i := range 3 {
		m := mustEncrypt(t, alice, fmt.Sprint("healed", i))
		if _, err := attacker().Decrypt(m, nil); err == nil {
			t.Fatal("stolen state decrypted a message after the round trip")
		}
		mustDecrypt(t, bob, m, fmt.Sprint("healed", i))
	}
	// And Bob's next replies are out of reach too.
	m = mustEncrypt(t, bob, "later")
	a := attacker()
	if _, err := a.Encrypt([]byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Decrypt(m, nil); err == nil {
		t.Fatal("stolen state decrypted Bob's later message")
	}
}

func TestStateRoundTrip(t *testing.T) {
	alice, bob := newPair(t, 12)
	mustDecrypt(t, bob, mustEncrypt(t, alice, "a"), "a")
	lost := mustEncrypt(t, alice, "lost for now")
	mustDecrypt(t, bob, mustEncrypt(t, alice, "b"), "b")
	mustDecrypt(t, alice, mustEncrypt(t, bob, "c"), "c")

	var restored Session
	if err := restored.UnmarshalBinary(snapshot(t, bob)); err != nil {
		t.Fatal(err)
	}
	restored.SetRand(seeded(13))
	if !bytes.Equal(snapshot(t, &restored), snapshot(t, bob)) {
		t.Fatal("marshal(unmarshal(x)) != x")
	}
	mustDecrypt(t, &restored, lost, "lost for now")
	mustDecrypt(t, &restored, mustEncrypt(t, alice, "d"), "d")
	mustDecrypt(t, alice, mustEncrypt(t, &restored, "e"), "e")

	for _, bad := range [][]byte{nil, []byte("PXRS"), []byte("PXRS\x02"), snapshot(t, bob)[:100]} {
		var s Session
		if err := s.UnmarshalBinary(bad); err == nil {
			t.Fatalf("accepted %x", bad)
		}
	}
}

func TestRedaction(t *testing.T) {
	alice, _ := newPair(t, 14)
	if s := fmt.Sprint(alice); s != "ratchet.Session{REDACTED}" {
		t.Fatalf("String = %q", s)
	}
	if s := fmt.Sprintf("%v", alice.LogValue()); bytes.Contains([]byte(s), alice.st.rk[:]) {
		t.Fatal("LogValue leaks the root key")
	}
}
