package zrtp

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"hash"
	"math/big"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/testpeer"
)

// The vectors in testdata/kdf_vectors.json and testdata/sas_b32.json, and
// the HelloACK packet of TestPacketCRCKnown, are computed independently of
// this package by testdata/zrtp_vectors.py (Python's hmac and hashlib,
// following RFC 6189 §4.5.1 (KDF), §4.4.1.4 (s0), the base32 pseudocode of
// §5.1.6 and the CRC-32C of §5). To regenerate the outputs from the inputs
// in the JSON files: cd testdata && python3 zrtp_vectors.py; TestVectorScript
// checks that the script and the recorded vectors agree.

func hashByName(t *testing.T, name string) func() hash.Hash {
	switch name {
	case "S256":
		return sha256.New
	case "S384":
		return sha512.New384
	}
	t.Fatalf("unknown hash %q", name)
	return nil
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKDFVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/kdf_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		KDF []struct {
			Hash, KI, Label, Context, Out string
			Bits                          int
		}
		S0 []struct {
			Hash, DHResult, ZIDi, ZIDr, TotalHash, S1, S2, S0 string
		}
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.KDF) == 0 || len(v.S0) == 0 {
		t.Fatal("no vectors")
	}
	for _, c := range v.KDF {
		got := KDF(hashByName(t, c.Hash), unhex(t, c.KI), c.Label, unhex(t, c.Context), c.Bits)
		if hex.EncodeToString(got) != c.Out {
			t.Errorf("KDF %s %q L=%d = %x, want %s", c.Hash, c.Label, c.Bits, got, c.Out)
		}
	}
	// The JSON field names use underscores; decode them explicitly.
	var s0s []map[string]string
	var wrap struct {
		S0 json.RawMessage `json:"s0"`
	}
	if err := json.Unmarshal(raw, &wrap); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(wrap.S0, &s0s); err != nil {
		t.Fatal(err)
	}
	for _, c := range s0s {
		var zi, zr ZID
		copy(zi[:], unhex(t, c["zidi"]))
		copy(zr[:], unhex(t, c["zidr"]))
		var s1, s2 []byte
		if c["s1"] != "" {
			s1 = unhex(t, c["s1"])
		}
		if c["s2"] != "" {
			s2 = unhex(t, c["s2"])
		}
		got := computeS0(hashByName(t, c["hash"]), unhex(t, c["dhresult"]), zi, zr, unhex(t, c["total_hash"]), s1, s2, nil)
		if hex.EncodeToString(got) != c["s0"] {
			t.Errorf("s0 %s s1=%q s2=%q = %x, want %s", c["hash"], c["s1"], c["s2"], got, c["s0"])
		}
	}
}

func TestSASBase32Vectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/sas_b32.json")
	if err != nil {
		t.Fatal(err)
	}
	var v []struct{ SASValue, B32 string }
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, c := range v {
		n, err := strconv.ParseUint(c.SASValue, 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		if got := SASBase32(uint32(n)); got != c.B32 {
			t.Errorf("SASBase32(%s) = %q, want %q", c.SASValue, got, c.B32)
		}
	}
	// Spot checks by hand: 0 is the first letter four times.
	if got := SASBase32(0); got != "yyyy" {
		t.Errorf("SASBase32(0) = %q", got)
	}
}

func TestPGPWordList(t *testing.T) {
	f, err := os.Open("testdata/pgpwords.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 3 {
			t.Fatalf("bad line %q", line)
		}
		i, err := strconv.ParseUint(fields[0], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		if pgpEven[i] != fields[1] || pgpOdd[i] != fields[2] {
			t.Errorf("word %02X = %s/%s, want %s/%s", i, pgpEven[i], pgpOdd[i], fields[1], fields[2])
		}
		n++
	}
	if n != 256 {
		t.Fatalf("%d entries in testdata, want 256", n)
	}
	for i := range 256 {
		for _, w := range []string{pgpEven[i], pgpOdd[i]} {
			if seen[strings.ToLower(w)] {
				t.Errorf("duplicate word %q", w)
			}
			seen[strings.ToLower(w)] = true
		}
	}
	if len(seen) != 512 {
		t.Errorf("%d distinct words, want 512", len(seen))
	}
	// The worked example of the published word list.
	b := unhex(t, "E58294F2E9A227486E8B061B31CC528FD7FA3F19")
	want := "topmost Istanbul Pluto vagabond treadmill Pacific brackish dictator goldfish Medusa " +
		"afflict bravado chatter revolver Dupont midsummer stopwatch whimsical cowbell bottomless"
	if got := PGPWords(b); got != want {
		t.Errorf("PGPWords = %q\nwant %q", got, want)
	}
}

func TestSASBase256(t *testing.T) {
	for _, c := range []struct {
		v    uint32
		want string
	}{
		{0x00000000, "aardvark adroitness"},
		{0xffff1234, "Zulu Yucatan"},
		{0xe5820000, "topmost Istanbul"},
		{0x0001ffff, "aardvark adviser"},
	} {
		if got := SASBase256(c.v); got != c.want {
			t.Errorf("SASBase256(%08x) = %q, want %q", c.v, got, c.want)
		}
	}
}

// TestVectorScript runs testdata/zrtp_vectors.py --check: the recorded
// vectors are what the independent script computes. Without python3 it
// skips, or fails when CI is set.
func TestVectorScript(t *testing.T) {
	py := testpeer.Require(t, "python3")
	cmd := exec.Command(py, "zrtp_vectors.py", "--check")
	cmd.Dir = "testdata"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zrtp_vectors.py --check: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "HelloACK seq 1 SSRC 01020304: 100000015a52545001020304505a000348656c6c6f41434bf8cb9ead") {
		t.Fatalf("script's HelloACK packet differs from TestPacketCRCKnown's:\n%s", out)
	}
}

func TestPacketCRCKnown(t *testing.T) {
	// CRC-32C check value of RFC 3720 / RFC 4960.
	if got := packetCRC([]byte("123456789")); got != 0xe3069283 {
		t.Fatalf("crc32c(123456789) = %08x", got)
	}
	// A HelloACK packet, sequence 1, SSRC 0x01020304; the trailer was
	// computed with a bitwise CRC-32C (reflected polynomial 0x82F63B78) and
	// written least significant byte first (testdata/zrtp_vectors.py).
	want := unhex(t, "100000015a52545001020304505a000348656c6c6f41434bf8cb9ead")
	got := EncodePacket(1, 0x01020304, ackMessage(typeHelloACK))
	if !bytes.Equal(got, want) {
		t.Fatalf("EncodePacket = %x\nwant %x", got, want)
	}
	seq, ssrc, msg, err := ParsePacket(want)
	if err != nil || seq != 1 || ssrc != 0x01020304 || string(msg[4:12]) != typeHelloACK {
		t.Fatalf("ParsePacket = %d %x %q %v", seq, ssrc, msg, err)
	}
	bad := bytes.Clone(want)
	bad[len(bad)-1] ^= 1
	if _, _, _, err := ParsePacket(bad); err != ErrBadCRC {
		t.Fatalf("corrupted CRC: %v", err)
	}
}

func TestDH3kPrime(t *testing.T) {
	// RFC 3526 §4: p is a safe prime of 3072 bits.
	if dh3kPrime.BitLen() != 3072 || !dh3kPrime.ProbablyPrime(20) {
		t.Fatal("p is not a 3072-bit prime")
	}
	q := new(big.Int).Rsh(dh3kPrime, 1)
	if !q.ProbablyPrime(20) {
		t.Fatal("(p-1)/2 is not prime")
	}
}
