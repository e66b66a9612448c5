package files_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/filecrypt"
	"github.com/phonex/phonex/internal/server/files"
)

// cryptoDevice is a device's file keys: certificate, identity key and
// message key.
type cryptoDevice struct {
	name string
	cert *x509.Certificate
	key  ed25519.PrivateKey
	kem  hpke.PrivateKey
}

func newCryptoDevice(t *testing.T, name string) *cryptoDevice {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		URIs: []*url.URL{{Scheme: "phonex", Opaque: name}}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kem, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &cryptoDevice{name, cert, key, kem}
}

// A file made and opened with internal/filecrypt passes through the node:
// real slots, the real proof, nonce2 from the recipient's offer, the
// header and metadata in the opaque header blob (length-prefixed here).
// The node's disk holds neither the plaintext nor the file's name.
func TestFilecryptThroughNode(t *testing.T) {
	e := newEnv(t, files.DefaultLimits, nil)
	alphaDev, bravoDev := newCryptoDevice(t, "alpha@example.org/a1"), newCryptoDevice(t, b1)
	now := time.Now()

	offers, secrets, err := filecrypt.NewSlots(filecrypt.SlotMaker{Device: bravoDev.name, Cert: bravoDev.cert, Signer: bravoDev.key}, alpha,
		[]filecrypt.SealTo{{Device: alphaDev.name, Cert: alphaDev.cert, KEM: alphaDev.kem.PublicKey()}}, now, filecrypt.DefaultSlotTTL, 2)
	if err != nil {
		t.Fatal(err)
	}
	put := api.FileSlotsPut{Contact: alpha}
	secretOf := map[string]*filecrypt.SlotSecret{}
	for i, o := range offers {
		id := hex.EncodeToString(o.ID[:])
		secretOf[id] = secrets[i]
		put.Slots = append(put.Slots, api.FileSlot{ID: id, Sealed: o.Sealed, ProofHash: o.ProofHash[:], Nonce2: o.Nonce2})
	}
	e.must(e.call("b1", "PUT", api.PathFileSlots, put, nil), "put slots")

	var taken api.FileSlotTaken
	e.must(e.call("a1", "POST", api.PathFileSlotTake, api.FileSlotTake{Recipient: bravo}, &taken), "take")
	sealed, err := filecrypt.ParseSealedSlot(taken.Slots[0].Sealed)
	if err != nil {
		t.Fatal(err)
	}
	slot, err := sealed.Open(filecrypt.SlotOpener{Device: alphaDev.name, Cert: alphaDev.cert, KEM: alphaDev.kem}, bravoDev.cert, now)
	if err != nil {
		t.Fatal(err)
	}
	var proven api.FileSlotProven
	e.must(e.call("a1", "POST", api.PathFileSlotProve, api.FileSlotProve{Device: b1, SlotID: taken.Slots[0].SlotID, Proof: slot.Proof()}, &proven), "prove")

	plain := bytes.Repeat([]byte("a secret document line\n"), 20_000)
	size, sum, _ := filecrypt.HashContent(bytes.NewReader(plain))
	out, err := filecrypt.NewFile(filecrypt.Sender{Device: alphaDev.name, Cert: alphaDev.cert, Signer: alphaDev.key},
		filecrypt.Metadata{Name: "quarterly-secret-plan.txt", Size: size, Type: "text/plain", SHA256: sum},
		[]filecrypt.SlotUse{{Slot: slot, Nonce2: proven.Nonce2}}, nil, now)
	if err != nil {
		t.Fatal(err)
	}
	var ct bytes.Buffer
	cw, _ := out.ContentWriter(&ct)
	cw.Write(plain)
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	blob := binary.BigEndian.AppendUint32(nil, uint32(len(out.Header)))
	blob = append(append(blob, out.Header...), out.Metadata...)

	var fc api.FileCreated
	e.must(e.call("a1", "POST", api.PathFiles, api.FileCreate{Recipient: bravo, Size: int64(ct.Len()), Header: blob,
		Slots: []api.FileSlotUse{{Device: b1, SlotID: taken.Slots[0].SlotID, Nonce2: proven.Nonce2}}}, &fc), "create")
	if r := e.patch("a1", fc.ID, 0, ct.Bytes()); r.status != http.StatusNoContent {
		t.Fatalf("upload: %+v", r.err)
	}

	// What the node holds: no plaintext line, no file name.
	for _, dir := range []string{e.blobDir, filepath.Dir(e.blobDir)} {
		ents, _ := os.ReadDir(dir)
		for _, x := range ents {
			if x.IsDir() {
				continue
			}
			data, _ := os.ReadFile(filepath.Join(dir, x.Name()))
			for _, secret := range []string{"a secret document line", "quarterly-secret-plan"} {
				if bytes.Contains(data, []byte(secret)) {
					t.Fatalf("%s holds %q", x.Name(), secret)
				}
			}
		}
	}

	// bravo: the offer, the header, the key from its slot secret, the content.
	var list api.FileList
	e.must(e.call("b1", "GET", api.PathFiles, nil, &list), "list")
	in := list.Incoming[0]
	hlen := binary.BigEndian.Uint32(in.Header)
	h, err := filecrypt.ParseHeader(in.Header[4 : 4+hlen])
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(alphaDev.cert); err != nil {
		t.Fatal(err)
	}
	key, err := h.UnwrapSlot(secretOf[in.SlotID])
	if err != nil {
		t.Fatal(err)
	}
	meta, err := key.OpenMetadata(in.Header[4+hlen:])
	if err != nil {
		t.Fatal(err)
	}
	if meta.Name != "quarterly-secret-plan.txt" {
		t.Fatalf("metadata %+v", meta)
	}
	r := e.do("b1", "GET", api.PathFiles+"/"+fc.ID, nil, nil)
	cr, err := key.ContentReader(bytes.NewReader(r.body), meta)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(cr)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("decrypted content differs: %v", err)
	}
	secretOf[in.SlotID].Destroy()
	e.must(e.call("b1", "POST", api.PathFiles+"/"+fc.ID+"/ack", nil, nil), "ack")
}
