package dnszone

import (
	"crypto"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"
)

// Key flags (RFC 4034 §2.1.1, RFC 3757): a zone key, and the SEP bit that
// marks a key-signing key.
const (
	FlagsZSK = dns.ZONE
	FlagsKSK = dns.ZONE | dns.SEP
)

// Algorithms the zone signs with (RFC 8624 §3.1: both MUST be validated by
// resolvers and are RECOMMENDED for signing).
const (
	ECDSAP256 = dns.ECDSAP256SHA256 // 13, RFC 6605
	Ed25519   = dns.ED25519         // 15, RFC 8080
)

// ErrAlgorithm is returned for a key algorithm the zone does not sign with.
var ErrAlgorithm = errors.New("unsupported DNSSEC algorithm (use 13, ECDSA P-256, or 15, Ed25519)")

// Key is a DNSSEC signing key: its DNSKEY record and the private key.
type Key struct {
	DNSKEY *dns.DNSKEY
	Signer crypto.Signer
}

// Tag is the key tag (RFC 4034 Appendix B).
func (k *Key) Tag() uint16 { return k.DNSKEY.KeyTag() }

// IsKSK reports whether the key has the SEP bit.
func (k *Key) IsKSK() bool { return k.DNSKEY.Flags&dns.SEP != 0 }

// String names the key without its private part.
func (k *Key) String() string {
	return fmt.Sprintf("DNSKEY %s flags %d alg %d tag %d", k.DNSKEY.Hdr.Name, k.DNSKEY.Flags, k.DNSKEY.Algorithm, k.Tag())
}

// GenerateKey makes a new key for zone: a KSK (SEP bit) or a ZSK.
func GenerateKey(zone string, alg uint8, ksk bool) (*Key, error) {
	bits := 0
	switch alg {
	case ECDSAP256:
		bits = 256
	case Ed25519:
		bits = 256
	default:
		return nil, fmt.Errorf("generate key: %d: %w", alg, ErrAlgorithm)
	}
	flags := uint16(FlagsZSK)
	if ksk {
		flags = FlagsKSK
	}
	k := &dns.DNSKEY{Hdr: dns.RR_Header{Name: dns.CanonicalName(zone), Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: DNSKEYTTL},
		Flags: flags, Protocol: 3, Algorithm: alg}
	priv, err := k.Generate(bits)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("generate key: %T is no signer", priv)
	}
	return &Key{DNSKEY: k, Signer: s}, nil
}

// Write stores the key as base.key (the DNSKEY record in zone file syntax)
// and base.private (BIND's Private-key-format, which dnssec-signzone and
// Knot's keymgr import too), both readable by the owner only.
func (k *Key) Write(dir, base string) error {
	pub := k.DNSKEY.String() + "\n"
	priv := k.DNSKEY.PrivateKeyString(k.Signer)
	if priv == "" {
		return fmt.Errorf("write key %s: cannot encode %T", base, k.Signer)
	}
	for _, f := range []struct{ name, data string }{{base + ".private", priv}, {base + ".key", pub}} {
		p := filepath.Join(dir, f.name)
		if _, err := os.Stat(p); err == nil {
			return fmt.Errorf("write key: %s exists", p)
		}
		if err := os.WriteFile(p, []byte(f.data), 0o600); err != nil {
			return fmt.Errorf("write key: %w", err)
		}
	}
	return nil
}

// LoadKey reads a key written by Write.
func LoadKey(dir, base string) (*Key, error) {
	pubText, err := os.ReadFile(filepath.Join(dir, base+".key"))
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	rr, err := dns.NewRR(strings.TrimSpace(string(pubText)))
	if err != nil {
		return nil, fmt.Errorf("load key %s.key: %w", base, err)
	}
	k, ok := rr.(*dns.DNSKEY)
	if !ok {
		return nil, fmt.Errorf("load key %s.key: not a DNSKEY record", base)
	}
	if k.Algorithm != ECDSAP256 && k.Algorithm != Ed25519 {
		return nil, fmt.Errorf("load key %s.key: %d: %w", base, k.Algorithm, ErrAlgorithm)
	}
	f, err := os.Open(filepath.Join(dir, base+".private"))
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	defer f.Close()
	priv, err := k.ReadPrivateKey(f, base+".private")
	if err != nil {
		return nil, fmt.Errorf("load key %s.private: %w", base, err)
	}
	s, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("load key %s.private: %T is no signer", base, priv)
	}
	// The private key must be the one of the published record, or every
	// signature it makes would be bogus.
	if !sameKey(s, k) {
		return nil, fmt.Errorf("load key %s: the private key does not match the DNSKEY", base)
	}
	return &Key{DNSKEY: k, Signer: s}, nil
}

// sameKey signs a probe RRset with s and checks it against k.
func sameKey(s crypto.Signer, k *dns.DNSKEY) bool {
	txt := &dns.TXT{Hdr: dns.RR_Header{Name: k.Hdr.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 1}, Txt: []string{"probe"}}
	sig := &dns.RRSIG{Hdr: dns.RR_Header{Ttl: 1}, Algorithm: k.Algorithm, KeyTag: k.KeyTag(), SignerName: k.Hdr.Name,
		Inception: 0, Expiration: ^uint32(0)}
	if err := sig.Sign(s, []dns.RR{txt}); err != nil {
		return false
	}
	return sig.Verify(k, []dns.RR{txt}) == nil
}

// DS is the delegation signer record of the KSK for the parent zone
// (RFC 4509: SHA-256 digest).
func (k *Key) DS() *dns.DS {
	return k.DNSKEY.ToDS(dns.SHA256)
}
