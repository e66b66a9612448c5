package filecrypt_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"time"

	"github.com/phonex/phonex/internal/filecrypt"
)

type exampleDevice struct {
	name string
	cert *x509.Certificate
	key  ed25519.PrivateKey
	kem  hpke.PrivateKey
}

// newExampleDevice stands in for an enrolled device: a certificate from the
// cluster's CA, an identity key and a message key.
func newExampleDevice(name string) *exampleDevice {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		URIs:      []*url.URL{{Scheme: "phonex", Opaque: name}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	cert, _ := x509.ParseCertificate(der)
	kem, _ := hpke.MLKEM768X25519().GenerateKey()
	return &exampleDevice{name, cert, key, kem}
}

// A voice message from alpha to bravo, through one half-key slot.
func Example() {
	alpha := newExampleDevice("alpha@example.org/laptop")
	bravo := newExampleDevice("bravo@example.org/phone")
	now := time.Now()

	// bravo makes slots for alpha and uploads the offers to the node.
	offers, secrets, err := filecrypt.NewSlots(
		filecrypt.SlotMaker{Device: bravo.name, Cert: bravo.cert, Signer: bravo.key}, "alpha@example.org",
		[]filecrypt.SealTo{{Device: alpha.name, Cert: alpha.cert, KEM: alpha.kem.PublicKey()}},
		now, filecrypt.DefaultSlotTTL, filecrypt.DefaultSlots)
	if err != nil {
		panic(err)
	}
	offer, secret := offers[0], secrets[0]

	// alpha takes the slot: the sealed slot first, nonce2 after the proof.
	sealed, err := filecrypt.ParseSealedSlot(offer.Sealed)
	if err != nil {
		panic(err)
	}
	slot, err := sealed.Open(filecrypt.SlotOpener{Device: alpha.name, Cert: alpha.cert, KEM: alpha.kem}, bravo.cert, now)
	if err != nil {
		panic(err)
	}
	if err := filecrypt.VerifySlotProof(offer.ID, offer.ProofHash, slot.Proof()); err != nil { // on the node
		panic(err)
	}
	nonce2 := offer.Nonce2

	// alpha encrypts.
	audio := []byte("OggS... (an Opus voice message)")
	size, sum, _ := filecrypt.HashContent(bytes.NewReader(audio))
	out, err := filecrypt.NewFile(filecrypt.Sender{Device: alpha.name, Cert: alpha.cert, Signer: alpha.key},
		filecrypt.Metadata{Name: "voice.ogg", Size: size, Type: "audio/ogg", SHA256: sum, Duration: 2500 * time.Millisecond},
		[]filecrypt.SlotUse{{Slot: slot, Nonce2: nonce2}}, nil, now)
	if err != nil {
		panic(err)
	}
	var content bytes.Buffer
	cw, _ := out.ContentWriter(&content)
	cw.Write(audio)
	if err := cw.Close(); err != nil {
		panic(err)
	}

	// bravo reads the metadata, then the content, then destroys the slot.
	h, err := filecrypt.ParseHeader(out.Header)
	if err != nil {
		panic(err)
	}
	if err := h.Verify(alpha.cert); err != nil {
		panic(err)
	}
	key, err := h.UnwrapSlot(secret)
	if err != nil {
		panic(err)
	}
	meta, err := key.OpenMetadata(out.Metadata)
	if err != nil {
		panic(err)
	}
	fmt.Println(meta.Name, meta.Type, meta.Duration, meta.Size, "bytes")
	r, _ := key.ContentReader(&content, meta)
	got, err := io.ReadAll(r)
	if err != nil {
		panic(err)
	}
	secret.Destroy()
	fmt.Println(string(got))
	_, err = h.UnwrapSlot(secret)
	fmt.Println(err)
	// Output:
	// voice.ogg audio/ogg 2.5s 31 bytes
	// OggS... (an Opus voice message)
	// unwrap: filecrypt: slot private half destroyed
}
