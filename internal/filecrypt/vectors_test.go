package filecrypt

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/mlkem"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/phonex/phonex/internal/testpeer"
)

// vectors are computed by testdata/vectors.py with Python's cryptography
// package, an implementation independent of this one.
type vectors struct {
	SlotID, Nonce1, Nonce2, Proof, ProofHash            string
	SlotX25519, SlotSeed, Ephemeral, SlotMLKEMSHA256    string
	KEMCiphertext, SSKEM, SSX25519                      string
	Sender, Recipient, Contact                          string
	SlotExpires, Created                                int64
	FileKey, FileID                                     string
	Size                                                uint64
	MetaName, MetaType                                  string
	MetaDurationMS                                      int64
	MetaPlain, MetaBlock, HeaderCore, CoreHash          string
	Transcript, KEK, Wrapped, SenderEd25519Seed, Header string
	ContentKey, ContentSHA256                           string
	ContentLen                                          int
	StreamKey                                           string
	Stream                                              []struct {
		Size, Len          int
		SHA256, Ciphertext string
	}
}

func loadVectors(t *testing.T, b []byte) *vectors {
	// The JSON keys are snake_case; map them onto the struct's names.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	fixed := map[string]json.RawMessage{}
	for k, v := range raw {
		fixed[camel(k)] = v
	}
	b, _ = json.Marshal(fixed)
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

// camel maps snake_case to the field names above (json matches case-insensitively).
func camel(s string) string { return string(bytes.ReplaceAll([]byte(s), []byte("_"), nil)) }

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func plainVector(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func eq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if hex.EncodeToString(got) != want {
		t.Errorf("%s:\n got %x\nwant %s", what, got, want)
	}
}

// TestVectors checks the vectors committed in testdata/vectors.json.
func TestVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	checkVectors(t, loadVectors(t, b))
}

// TestVectorScript runs the independent script afresh (a new ML-KEM
// encapsulation each time) and checks its output.
func TestVectorScript(t *testing.T) {
	py := testpeer.Require(t, "python3")
	if err := exec.Command(py, "-c", "from cryptography.hazmat.primitives.asymmetric import mlkem").Run(); err != nil {
		// Debian's python3-cryptography predates ML-KEM; the committed
		// vectors (TestVectors) still run.
		t.Skip("python3's cryptography package has no ML-KEM (needs a recent release from pip; made with 48.0.0)")
	}
	out, err := exec.Command(py, "testdata/vectors.py").Output()
	if err != nil {
		t.Fatalf("vectors.py: %v", err)
	}
	checkVectors(t, loadVectors(t, out))
}

func checkVectors(t *testing.T, v *vectors) {
	var id SlotID
	copy(id[:], unhex(t, v.SlotID))
	nonce1, nonce2 := unhex(t, v.Nonce1), unhex(t, v.Nonce2)
	fileKey := unhex(t, v.FileKey)
	var fileID [FileIDSize]byte
	copy(fileID[:], unhex(t, v.FileID))

	// Slot proof.
	eq(t, "proof", ProveSlot(id, nonce1), v.Proof)
	ph := SlotProofHash(id, unhex(t, v.Proof))
	eq(t, "proof hash", ph[:], v.ProofHash)

	// Slot keys and the two shared secrets.
	secret := &SlotSecret{
		ID: id, Recipient: v.Recipient, Contact: v.Contact, Expires: time.Unix(v.SlotExpires, 0),
		x25519: unhex(t, v.SlotX25519), seed: unhex(t, v.SlotSeed), nonce1: nonce1, nonce2: nonce2,
	}
	slotX, slotEK, err := secret.publicKeys()
	if err != nil {
		t.Fatal(err)
	}
	ekHash := sha256.Sum256(slotEK)
	eq(t, "slot ml-kem key hash", ekHash[:], v.SlotMLKEMSHA256)
	dk, _ := mlkem.NewDecapsulationKey768(unhex(t, v.SlotSeed))
	kemCT := unhex(t, v.KEMCiphertext)
	ssK, err := dk.Decapsulate(kemCT)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "ml-kem shared secret", ssK, v.SSKEM)
	eph, _ := ecdh.X25519().NewPrivateKey(unhex(t, v.Ephemeral))
	sp, _ := ecdh.X25519().NewPublicKey(slotX)
	ssX, _ := eph.ECDH(sp)
	eq(t, "x25519 shared secret", ssX, v.SSX25519)

	// Metadata block.
	meta := Metadata{Name: v.MetaName, Size: v.Size, Type: v.MetaType,
		SHA256: sha256.Sum256(plainVector(int(v.Size))), Duration: time.Duration(v.MetaDurationMS) * time.Millisecond}
	mp, _ := meta.MarshalBinary()
	eq(t, "metadata plaintext", mp, v.MetaPlain)
	mb, _ := sealMetadata(fileKey, fileID, &meta)
	eq(t, "metadata block", mb, v.MetaBlock)

	// Header: parse, core hash, wrap, signature.
	h, err := ParseHeader(unhex(t, v.Header))
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "header core", h.core, v.HeaderCore)
	eq(t, "core hash", h.CoreHash(), v.CoreHash)
	eq(t, "transcript", slotTranscript(v.Sender, v.Recipient, id, h.CoreHash(), slotX, slotEK, eph.PublicKey().Bytes(), kemCT), v.Transcript)
	kek, _ := slotKEK(ssK, ssX, nonce1, nonce2, unhex(t, v.Transcript))
	eq(t, "kek", kek, v.KEK)
	pub := &SlotPublic{ID: id, Recipient: v.Recipient, X25519: slotX, MLKEM: slotEK}
	w, err := sealSlotWrap(v.Sender, h.CoreHash(), pub, nonce1, nonce2, eph.PublicKey().Bytes(), ssX, ssK, kemCT, fileKey)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "wrapped key", w.Sealed, v.Wrapped)
	eq(t, "wraps", encodeWraps([]Wrap{*w}), hex.EncodeToString(h.wraps))
	sk := ed25519.NewKeyFromSeed(unhex(t, v.SenderEd25519Seed))
	eq(t, "signature", ed25519.Sign(sk, h.signedBytes()), hex.EncodeToString(h.Signature))
	again, _ := h.MarshalBinary()
	eq(t, "header", again, v.Header)

	// Content.
	ck, _ := contentKey(fileKey, fileID, h.CoreHash())
	eq(t, "content key", ck, v.ContentKey)
	var ct bytes.Buffer
	sw, _ := NewStreamWriter(ck, &ct)
	sw.Write(plainVector(int(v.Size)))
	sw.Close()
	sum := sha256.Sum256(ct.Bytes())
	eq(t, "content", sum[:], v.ContentSHA256)

	// The recipient's side on the independent bytes.
	if !ed25519.Verify(sk.Public().(ed25519.PublicKey), h.signedBytes(), h.Signature) {
		t.Fatal("header signature does not verify")
	}
	h.verified = true // Verify also checks a certificate, which the vector has no room for
	fk, err := h.UnwrapSlot(secret)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "unwrapped file key", fk.key, v.FileKey)
	m, err := fk.OpenMetadata(unhex(t, v.MetaBlock))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != v.MetaName || m.Duration != meta.Duration {
		t.Errorf("metadata %+v", m)
	}
	r, _ := fk.ContentReader(bytes.NewReader(ct.Bytes()), m)
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plainVector(int(v.Size))) {
		t.Fatalf("content: %v", err)
	}

	// STREAM at the chunk edges.
	key := unhex(t, v.StreamKey)
	for _, s := range v.Stream {
		var buf bytes.Buffer
		sw, _ := NewStreamWriter(key, &buf)
		sw.Write(plainVector(s.Size))
		sw.Close()
		sum := sha256.Sum256(buf.Bytes())
		if buf.Len() != s.Len || int64(s.Len) != EncryptedSize(int64(s.Size)) {
			t.Errorf("stream %d: %d bytes, want %d", s.Size, buf.Len(), s.Len)
		}
		eq(t, "stream", sum[:], s.SHA256)
		if s.Ciphertext != "" {
			eq(t, "stream ciphertext", buf.Bytes(), s.Ciphertext)
			r, _ := NewStreamReader(key, bytes.NewReader(unhex(t, s.Ciphertext)), int64(s.Size))
			if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, plainVector(s.Size)) {
				t.Errorf("stream %d: open: %v", s.Size, err)
			}
		}
	}
}
