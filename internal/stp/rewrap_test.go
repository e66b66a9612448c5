package stp

import (
	"errors"
	"slices"
	"testing"

	"crypto/x509"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/wire"
)

// rewrap is what a recipient can do with the cluster's help: open its key
// slot, seal the same keys for a third party, drop the other slots and
// recompute the HMAC (the MAC key is in the slot).
func rewrap(t *testing.T, f *fixture, env []byte, by, to *party) []byte {
	t.Helper()
	p, payload, err := ParseEnvelope(env)
	if err != nil {
		t.Fatal(err)
	}
	var m wire.STPSimpleGroup
	mustUnmarshal(t, payload, &m)
	i := slices.IndexFunc(m.KeySlots, func(k *wire.KeySlot) bool { return k.GetRecipient() == by.Address })
	if i < 0 {
		t.Fatal("no slot for the re-wrapping recipient")
	}
	encKey, macKey, err := unwrapKeys(m.KeySlots[i].GetVersion(), f.receiver(by), m.KeySlots[i].SealedKey)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := wrapKeys(KeyHPKE, to.recipient(), append(slices.Clone(encKey), macKey...))
	if err != nil {
		t.Fatal(err)
	}
	m.KeySlots = []*wire.KeySlot{{Recipient: proto.String(to.Address), Version: proto.Int32(KeyHPKE), SealedKey: sealed}}
	covered, err := coveredBytes(&m, groupMAC, &virtualFields{encKey: encKey, macKey: macKey, protocol: p})
	if err != nil {
		t.Fatal(err)
	}
	if m.Hmac, err = computeMAC(m.GetHmacVersion(), macKey, covered); err != nil {
		t.Fatal(err)
	}
	out, err := marshalSTP(p, &m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGroupRewrapRefused: Bob, a recipient of Alice's message to him,
// re-wraps its keys for Carol. Carol must not see it as Alice's message to
// her: v2 signs the key slots (ErrBadSignature), and both versions check
// the signed destination (ErrDestination for v1, where the slots are not
// signed).
func TestGroupRewrapRefused(t *testing.T) {
	f := loadFixture(t)
	for _, c := range []struct {
		p    Protocol
		want error
	}{{GroupV1, ErrDestination}, {GroupV2, ErrBadSignature}} {
		t.Run(c.p.String(), func(t *testing.T) {
			out := &Outgoing{AmpType: 1, AmpVersion: 2, Sent: testNow, Payload: []byte("for Bob only")}
			env, err := sealGroup(c.p, f.Alice.edSender(), f.Bob.Address, []*Recipient{f.Bob.recipient()}, out)
			if err != nil {
				t.Fatal(err)
			}
			edCert := func(r *Receiver) *Receiver {
				next := r.SenderCertificate
				r.SenderCertificate = func(s, _ string) (*x509.Certificate, error) { return next(s, "ed25519") }
				return r
			}
			if _, err := NewDispatcher().Open(env, edCert(f.receiver(f.Bob))); err != nil {
				t.Fatalf("Bob opens his own message: %v", err)
			}
			bad := rewrap(t, f, env, f.Bob, f.Carol)
			_, err = NewDispatcher().Open(bad, edCert(f.receiver(f.Carol)))
			if !errors.Is(err, c.want) {
				t.Fatalf("re-wrapped for Carol: %v, want %v", err, c.want)
			}
		})
	}
}
