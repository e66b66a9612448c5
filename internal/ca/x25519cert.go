package ca

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// signX25519 issues a certificate for an X25519 key (RFC 8410 §4). Go's
// x509.CreateCertificate refuses key-agreement keys, so the certificate is
// first built for a throwaway Ed25519 key, its subjectPublicKeyInfo replaced
// (RFC 5280 §4.1: the 7th field of tbsCertificate), and the result signed
// again with the CA key.
func (c *CA) signX25519(tmpl *x509.Certificate, pub *ecdh.PublicKey) (*x509.Certificate, error) {
	_, throwaway, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.Cert, throwaway.Public(), c.Key)
	if err != nil {
		return nil, fmt.Errorf("issue x25519 certificate: %w", err)
	}
	draft, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	var tbs asn1.RawValue
	if _, err := asn1.Unmarshal(draft.RawTBSCertificate, &tbs); err != nil {
		return nil, err
	}
	var fields []asn1.RawValue
	for rest := tbs.Bytes; len(rest) > 0; {
		var f asn1.RawValue
		if rest, err = asn1.Unmarshal(rest, &f); err != nil {
			return nil, err
		}
		fields = append(fields, f)
	}
	if len(fields) < 7 {
		return nil, fmt.Errorf("issue x25519 certificate: tbsCertificate has %d fields", len(fields))
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var body []byte
	for i, f := range fields {
		if i == 6 {
			body = append(body, spki...)
			continue
		}
		body = append(body, f.FullBytes...)
	}
	newTBS, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(newTBS)
	sig, err := c.Key.Sign(rand.Reader, h[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("sign x25519 certificate: %w", err)
	}
	var outer asn1.RawValue
	if _, err := asn1.Unmarshal(der, &outer); err != nil {
		return nil, err
	}
	// The outer signatureAlgorithm equals tbsCertificate's (fields[2]); the CA
	// key and hash are unchanged, so it is reused as is.
	sigBits, err := asn1.Marshal(asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)})
	if err != nil {
		return nil, err
	}
	certBody := append(append(append([]byte{}, newTBS...), fields[2].FullBytes...), sigBits...)
	full, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: certBody})
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(full)
	if err != nil {
		return nil, fmt.Errorf("parse x25519 certificate: %w", err)
	}
	if err := cert.CheckSignatureFrom(c.Cert); err != nil {
		return nil, fmt.Errorf("x25519 certificate does not verify: %w", err)
	}
	return cert, nil
}

// KexPublic returns the X25519 key of a key-agreement certificate. Go's
// certificate parser leaves such keys unparsed, so the SPKI is read directly.
func KexPublic(cert *x509.Certificate) (*ecdh.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("key-agreement certificate: %w", err)
	}
	k, ok := pub.(*ecdh.PublicKey)
	if !ok || k.Curve() != ecdh.X25519() {
		return nil, fmt.Errorf("key-agreement certificate holds %T, want X25519", pub)
	}
	return k, nil
}
