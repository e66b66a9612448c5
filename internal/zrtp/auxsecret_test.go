package zrtp

import (
	"errors"
	"testing"
	"time"
)

// TestSetAuxSecret: an auxsecret set after New takes part like one given
// in Config: the SAS commits to it (same randomness, other SAS than
// without it), and it cannot be changed once the exchange started.
func TestSetAuxSecret(t *testing.T) {
	aux := []byte("both identity keys, ordered")
	plainA := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 11)
	plainB := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2}, 12)
	run(t, &link{}, plainA, plainB, 10*time.Second)
	checkAgreement(t, plainA, plainB)

	a := newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 11)
	b := newParty(t, "bob", Config{ZID: zidBob, SSRC: 2}, 12)
	for _, p := range []*party{a, b} {
		if err := p.e.SetAuxSecret(aux); err != nil {
			t.Fatal(err)
		}
	}
	run(t, &link{}, a, b, 10*time.Second)
	checkAgreement(t, a, b)
	if a.secure.AuxMismatch || b.secure.AuxMismatch {
		t.Fatal("equal auxsecrets reported as a mismatch")
	}
	if a.secure.SASValue == plainA.secure.SASValue {
		t.Error("the SAS does not depend on the auxsecret")
	}
	if err := a.e.SetAuxSecret(aux); !errors.Is(err, ErrAuxTooLate) {
		t.Errorf("SetAuxSecret after the exchange: %v", err)
	}

	// One side without an auxsecret: reported, keys still agree (§4.3).
	a = newParty(t, "alice", Config{ZID: zidAlice, SSRC: 1}, 13)
	b = newParty(t, "bob", Config{ZID: zidBob, SSRC: 2}, 14)
	if err := a.e.SetAuxSecret(aux); err != nil {
		t.Fatal(err)
	}
	run(t, &link{}, a, b, 10*time.Second)
	checkAgreement(t, a, b)
	if !a.secure.AuxMismatch {
		t.Error("missing peer auxsecret not reported")
	}
}
