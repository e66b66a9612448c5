package client

import (
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rsa"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/phonex/phonex/internal/amp"
	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/ratchet"
	"github.com/phonex/phonex/internal/stp"
)

// The device's long-term message KEM key (HPKE MLKEM768X25519) opens the key
// slots of STPSimpleGroup and STPSimple v3. It is made on the device, kept
// in the encrypted database, and published signed by the device key.
const kvKEM = "kem-private"

var kemSuite = hpke.MLKEM768X25519()

func kemMessage(dev string, pub []byte) []byte {
	return append([]byte("phonex/v1/message-kem\x00"+dev+"\x00"), pub...)
}

func (p *Profile) kemKey(ctx context.Context) (hpke.PrivateKey, bool, error) {
	var b []byte
	err := p.db.db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k=?`, kvKEM).Scan(&b)
	if err == nil {
		k, err := kemSuite.NewPrivateKey(b)
		return k, false, err
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	k, err := kemSuite.GenerateKey()
	if err != nil {
		return nil, false, err
	}
	b, err = k.Bytes()
	if err != nil {
		return nil, false, err
	}
	if _, err := p.db.db.ExecContext(ctx, `INSERT INTO kv(k, v) VALUES(?, ?)`, kvKEM, b); err != nil {
		return nil, false, err
	}
	return k, true, nil
}

// publishKeys makes sure the cluster holds this device's message key and
// capabilities.
func (p *Profile) publishKeys(ctx context.Context) error {
	k, fresh, err := p.kemKey(ctx)
	if err != nil {
		return fmt.Errorf("message key: %w", err)
	}
	var published []byte
	p.db.db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k='kem-published'`).Scan(&published)
	if !fresh && string(published) == p.Meta.Handle {
		return nil
	}
	pub := k.PublicKey().Bytes()
	sig, err := keys.Sign(p.Keys.Sign, kemMessage(p.Device.String(), pub))
	if err != nil {
		return err
	}
	rec, caps, state, err := p.capabilityRecord(ctx)
	if err != nil {
		return err
	}
	up := api.Prekeys{Capabilities: caps, KEM: &api.Prekey{ID: 1, Data: pub, Sig: sig}, Record: rec}
	if err := p.c.call(ctx, "PUT", api.PathKeys, up, nil); err != nil {
		return fmt.Errorf("publish message key: %w", err)
	}
	if rec != nil {
		if err := kvPut(ctx, p.db.db, kvRecordState, state); err != nil {
			return err
		}
	}
	_, err = p.db.db.ExecContext(ctx, `INSERT INTO kv(k, v) VALUES('kem-published', ?) ON CONFLICT(k) DO UPDATE SET v=excluded.v`, []byte(p.Meta.Handle))
	return err
}

// peerDevice is a verified device of a contact (or of this account).
type peerDevice struct {
	id      ident.Device
	cert    *x509.Certificate
	kexCert *x509.Certificate
	kex     *ecdh.PublicKey
	kem     hpke.PublicKey
	caps    []string              // from the signed record only
	record  *amp.CapabilityRecord // nil when missing or not verifying
	pin     pinStatus
	bundle  *ratchet.PrekeyBundle // nil unless asked for and offered
}

// bundles fetches and verifies the devices of an account: each certificate
// against the CA and the identity, each message key against the device's
// signature, each key against its first-use pin. Ratchet bundles, which
// spend the devices' one-time prekeys, come only for the devices named in
// consume.
func (p *Profile) bundles(ctx context.Context, acct ident.Account, consume ...string) ([]peerDevice, error) {
	var bs []api.Bundle
	path := api.PathKeys + "/" + acct.String()
	if len(consume) > 0 {
		path += "?consume=" + url.QueryEscape(strings.Join(consume, ","))
	}
	if err := p.c.call(ctx, "GET", path, nil, &bs); err != nil {
		return nil, err
	}
	known, err := p.db.accountPinned(ctx, acct.String())
	if err != nil {
		return nil, err
	}
	own := acct == p.Device.Account
	if own {
		// This device is not pinned; whether it looked at its account
		// before is recorded instead, so that a second device added later
		// is new, not trusted on first use.
		_, seen, err := kvGet(ctx, p.db.db, kvOwnSeen)
		if err != nil {
			return nil, err
		}
		known = known || seen
	}
	var out []peerDevice
	for _, b := range bs {
		d, err := ident.ParseDevice(b.Device)
		if err != nil || d.Account != acct {
			p.log.Warn("bundle for a foreign device ignored")
			continue
		}
		vd, err := verifyContactDevice(p.caFor(acct, b.CA), acct.String(), api.ContactDevice{Name: d.Name, Cert: b.Cert, KexCert: b.KexCert}, p.now())
		if err != nil {
			p.log.Warn("device certificate refused", "err", err)
			continue
		}
		cert, _ := x509.ParseCertificate(b.Cert)
		pd := peerDevice{id: d, cert: cert}
		if d != p.Device {
			if pd.pin, err = p.pinDevice(ctx, d, vd.KeySHA256, vd.kexSHA, known); err != nil {
				return nil, err
			}
		}
		if b.KexCert != nil {
			if pd.kexCert, err = x509.ParseCertificate(b.KexCert); err == nil {
				pd.kex, err = ca.KexPublic(pd.kexCert)
			}
			if err != nil {
				p.log.Warn("key-agreement certificate refused", "device", d.String())
				pd.kexCert, pd.kex = nil, nil
			}
		}
		// Capabilities count only as the device signed them: the cluster
		// could otherwise hide the ratchet and force key slots.
		if pd.record, err = verifyRecord(cert, d.String(), b.Record); err != nil {
			p.log.Debug("capability record refused", "device", d.String(), "err", err)
		} else {
			pd.caps = pd.record.Capabilities
		}
		if pd.bundle, err = bundleOf(pd, b); err != nil {
			p.log.Warn("ratchet bundle refused", "device", d.String(), "err", err)
			pd.bundle = nil
		}
		if b.KEM != nil {
			if err := keys.Verify(cert.PublicKey, kemMessage(d.String(), b.KEM.Data), b.KEM.Sig); err != nil {
				p.log.Warn("message key with a bad signature ignored", "device", d.String())
			} else if pd.kem, err = kemSuite.NewPublicKey(b.KEM.Data); err != nil {
				p.log.Warn("malformed message key ignored", "device", d.String())
			}
		}
		out = append(out, pd)
	}
	if own {
		if err := kvPut(ctx, p.db.db, kvOwnSeen, "1"); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recipients turns verified devices into STP key-slot recipients; a device
// without a message key can still be reached through its RSA certificate.
func recipients(ds []peerDevice, skip ident.Device) []*stp.Recipient {
	var out []*stp.Recipient
	for _, d := range ds {
		if d.id == skip {
			continue
		}
		r := &stp.Recipient{Address: d.id.String(), Certificate: d.cert, KEM: d.kem}
		if _, isRSA := d.cert.PublicKey.(*rsa.PublicKey); d.kem == nil && !isRSA {
			continue // an ec device that has not published its message key yet
		}
		out = append(out, r)
	}
	return out
}
