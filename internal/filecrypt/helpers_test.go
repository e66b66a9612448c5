package filecrypt

import (
	"crypto"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"
)

// device is a test device: a certificate naming it, its identity key and
// its message KEM key, as the device layer would hold them.
type device struct {
	name   string
	cert   *x509.Certificate
	signer crypto.Signer
	kem    hpke.PrivateKey
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func newDevice(t testing.TB, name string, useRSA bool) *device {
	t.Helper()
	var signer crypto.Signer
	if useRSA {
		rsaOnce.Do(func() {
			var err error
			if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		})
		signer = rsaKey
	} else {
		_, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		signer = sk
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		URIs:         []*url.URL{{Scheme: "phonex", Opaque: name}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kem, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &device{name: name, cert: cert, signer: signer, kem: kem}
}

func (d *device) maker() SlotMaker   { return SlotMaker{Device: d.name, Cert: d.cert, Signer: d.signer} }
func (d *device) sender() Sender     { return Sender{Device: d.name, Cert: d.cert, Signer: d.signer} }
func (d *device) opener() SlotOpener { return SlotOpener{Device: d.name, Cert: d.cert, KEM: d.kem} }
func (d *device) sealTo() SealTo {
	return SealTo{Device: d.name, Cert: d.cert, KEM: d.kem.PublicKey()}
}
func (d *device) own() OwnDevice { return OwnDevice{Device: d.name, KEM: d.kem.PublicKey()} }

// world is alpha (laptop, desktop) sending to bravo (phone: ec, desk: rsa).
type world struct {
	alpha, alpha2, bravo, bravo2 *device
	now                          time.Time
}

func newWorld(t testing.TB) *world {
	return &world{
		alpha:  newDevice(t, "alpha@localhost/laptop", false),
		alpha2: newDevice(t, "alpha@localhost/desktop", false),
		bravo:  newDevice(t, "bravo@localhost/phone", false),
		bravo2: newDevice(t, "bravo@localhost/desk", true),
		now:    time.Unix(1_800_000_000, 0).UTC(),
	}
}

// takeSlot runs the whole handout for one slot of rcpt: rcpt makes it for
// alpha, alpha opens it, proves it to the "node", and gets nonce2.
func (w *world) takeSlot(t testing.TB, rcpt *device) (SlotUse, *SlotSecret) {
	t.Helper()
	offer, secret, err := NewSlot(rcpt.maker(), "alpha@localhost", []SealTo{w.alpha.sealTo(), w.alpha2.sealTo()}, w.now, DefaultSlotTTL)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := ParseSealedSlot(offer.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := sealed.Open(w.alpha.opener(), rcpt.cert, w.now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySlotProof(offer.ID, offer.ProofHash, slot.Proof()); err != nil {
		t.Fatal(err)
	}
	return SlotUse{Slot: slot, Nonce2: offer.Nonce2}, secret
}
