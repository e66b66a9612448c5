package ratchet_test

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/phonex/phonex/internal/ratchet"
)

func identity() *ratchet.IdentityKeyPair {
	_, sig, _ := ed25519.GenerateKey(rand.Reader)
	dh, _ := ecdh.X25519().GenerateKey(rand.Reader)
	ik, _ := ratchet.NewIdentityKeyPair(sig, dh)
	return ik
}

// Bob publishes prekeys; Alice fetches a bundle, pins Bob's identity, and
// starts a session; Bob accepts it from her first message.
func Example() {
	alice, bob := identity(), identity()

	// Bob's device: prekeys into its store, public halves to the key service.
	store := ratchet.NewMemoryPrekeyStore()
	spk, _ := ratchet.NewSignedPrekey(nil, bob, 1)
	opk, _ := ratchet.NewOneTimePrekey(nil, 100)
	pq, _ := ratchet.NewPQPrekey(nil, bob, 200, false)
	store.AddSignedPrekey(spk)
	store.AddOneTimePrekey(opk)
	store.AddPQPrekey(pq)
	bundle := &ratchet.PrekeyBundle{
		Identity:       bob.Public(),
		SignedPrekeyID: spk.ID, SignedPrekey: spk.Key.PublicKey(), SignedPrekeySig: spk.Signature,
		OneTimePrekeyID: opk.ID, OneTimePrekey: opk.Key.PublicKey(),
		PQPrekeyID: pq.ID, PQPrekey: pq.Key.EncapsulationKey(), PQPrekeySig: pq.Signature,
	}

	// Alice's device.
	aliceTrust := ratchet.NewMemoryTrustStore()
	if err := ratchet.CheckIdentity(aliceTrust, "bob@example.org/phone", bundle.Identity); err != nil {
		fmt.Println(err)
		return
	}
	as, _, err := ratchet.InitiateSession(nil, alice, bundle)
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, _ := as.Encrypt([]byte("hello Bob"), nil)

	// Bob's device.
	parsed, _ := ratchet.ParseMessage(msg)
	bobTrust := ratchet.NewMemoryTrustStore()
	if err := ratchet.CheckIdentity(bobTrust, "alice@example.org/laptop", parsed.Initial.Identity); err != nil {
		fmt.Println(err)
		return
	}
	bs, pt, err := ratchet.AcceptSession(nil, bob, store, msg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(pt))

	reply, _ := bs.Encrypt([]byte("hello Alice"), nil)
	pt, _ = as.Decrypt(reply, nil)
	fmt.Println(string(pt))
	// Output:
	// hello Bob
	// hello Alice
}

// A body is encrypted once; its key goes through each device's session.
func ExampleEncryptFanout() {
	alice := identity()
	sessions := map[ratchet.DeviceID]*ratchet.Session{}
	accept := map[ratchet.DeviceID]func(body, header []byte) string{}
	for _, id := range []ratchet.DeviceID{"bob@example.org/phone", "alice@example.org/phone"} {
		dev := identity()
		store := ratchet.NewMemoryPrekeyStore()
		spk, _ := ratchet.NewSignedPrekey(nil, dev, 1)
		pq, _ := ratchet.NewPQPrekey(nil, dev, 2, true)
		store.AddSignedPrekey(spk)
		store.AddPQPrekey(pq)
		s, _, _ := ratchet.InitiateSession(nil, alice, &ratchet.PrekeyBundle{
			Identity:       dev.Public(),
			SignedPrekeyID: spk.ID, SignedPrekey: spk.Key.PublicKey(), SignedPrekeySig: spk.Signature,
			PQPrekeyID: pq.ID, PQPrekey: pq.Key.EncapsulationKey(), PQPrekeySig: pq.Signature, PQPrekeyLastResort: true,
		})
		sessions[id] = s
		accept[id] = func(body, header []byte) string {
			_, pt, err := ratchet.AcceptFanout(nil, dev, store, "alice@example.org/laptop", id, body, header, []byte("chat 1"))
			if err != nil {
				return err.Error()
			}
			return string(pt)
		}
	}
	body, headers, _ := ratchet.EncryptFanout(nil, "alice@example.org/laptop", []byte("hi all"), sessions, []byte("chat 1"))
	fmt.Println(accept["bob@example.org/phone"](body, headers["bob@example.org/phone"]))
	fmt.Println(accept["alice@example.org/phone"](body, headers["alice@example.org/phone"]))
	// Output:
	// hi all
	// hi all
}
