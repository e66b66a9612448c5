package stp

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"
)

// testGroup is the group destination every test party belongs to.
const testGroup = "team@example.org"

var update = flag.Bool("update", false, "regenerate testdata/keys.json and testdata/vectors.json")

// party is one test device with keys of both suites.
type party struct {
	Address string `json:"address"`
	RSA     []byte `json:"rsa_pkcs8"`
	EdSeed  []byte `json:"ed25519_seed"`
	KEMIKM  []byte `json:"kem_ikm"`

	rsaKey *rsa.PrivateKey
	edKey  ed25519.PrivateKey
	kemKey hpke.PrivateKey
}

func (p *party) load() error {
	k, err := x509.ParsePKCS8PrivateKey(p.RSA)
	if err != nil {
		return err
	}
	p.rsaKey = k.(*rsa.PrivateKey)
	p.edKey = ed25519.NewKeyFromSeed(p.EdSeed)
	p.kemKey, err = hpke.MLKEM768X25519().DeriveKeyPair(p.KEMIKM)
	return err
}

func (p *party) rsaSender() *Sender { return &Sender{Address: p.Address, Signer: p.rsaKey} }
func (p *party) edSender() *Sender  { return &Sender{Address: p.Address, Signer: p.edKey} }

func (p *party) recipient() *Recipient {
	return &Recipient{
		Address:     p.Address,
		Certificate: &x509.Certificate{PublicKey: &p.rsaKey.PublicKey},
		KEM:         p.kemKey.PublicKey(),
	}
}

// testNow is the receiving clock of every test and vector.
var testNow = time.UnixMilli(1_700_000_000_000)

type fixture struct {
	Alice *party `json:"alice"`
	Bob   *party `json:"bob"`
	Carol *party `json:"carol"`
}

func (f *fixture) parties() []*party { return []*party{f.Alice, f.Bob, f.Carol} }

// receiver returns p's receiver, trusting the RSA or Ed25519 keys of all
// parties (selected by certificateVersion "ed25519"; empty means RSA).
func (f *fixture) receiver(p *party) *Receiver {
	return &Receiver{
		Addresses: []string{p.Address},
		Groups:    []string{testGroup},
		RSAKey:    p.rsaKey,
		KEMKey:    p.kemKey,
		SenderCertificate: func(sender, cv string) (*x509.Certificate, error) {
			for _, q := range f.parties() {
				if q.Address != sender {
					continue
				}
				if cv == "ed25519" {
					return &x509.Certificate{PublicKey: q.edKey.Public()}, nil
				}
				return &x509.Certificate{PublicKey: &q.rsaKey.PublicKey}, nil
			}
			return nil, errors.New("no such contact")
		},
		Replay: NewMemoryReplayGuard(DefaultMaxAge+DefaultMaxSkew, func() time.Time { return testNow }),
		Now:    func() time.Time { return testNow },
	}
}

var (
	fixtureOnce sync.Once
	fixtureVal  *fixture
	fixtureErr  error
)

const keysFile = "testdata/keys.json"

// generateFixture makes the test keys from seeded randomness.
func generateFixture(t *testing.T) *fixture {
	cryptotest.SetGlobalRandom(t, 1)
	f := &fixture{}
	for i, addr := range []string{"alice@example.org/phone", "bob@example.org/laptop", "carol@example.net/tablet"} {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		ed := sha256.Sum256(fmt.Appendf(nil, "ed25519 seed %d", i))
		kem := sha256.Sum256(fmt.Appendf(nil, "kem ikm %d", i))
		p := &party{Address: addr, RSA: der, EdSeed: ed[:], KEMIKM: kem[:]}
		switch i {
		case 0:
			f.Alice = p
		case 1:
			f.Bob = p
		case 2:
			f.Carol = p
		}
	}
	writeJSON(t, keysFile, f)
	return f
}

func writeJSON(t *testing.T, name string, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func loadFixture(t testing.TB) *fixture {
	t.Helper()
	fixtureOnce.Do(func() {
		b, err := os.ReadFile(keysFile)
		if err != nil {
			fixtureErr = err
			return
		}
		var f fixture
		if err := json.Unmarshal(b, &f); err != nil {
			fixtureErr = err
			return
		}
		for _, p := range f.parties() {
			if err := p.load(); err != nil {
				fixtureErr = err
				return
			}
		}
		fixtureVal = &f
	})
	if fixtureErr != nil {
		t.Fatalf("load %s (run go test -run TestVectors -update to make it): %v", keysFile, fixtureErr)
	}
	return fixtureVal
}
