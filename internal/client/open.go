package client

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/kdf"
)

// WrongPasswordError says how many attempts are left.
type WrongPasswordError struct {
	FreeLeft, Remaining int
}

func (e *WrongPasswordError) Error() string {
	switch {
	case e.Remaining <= 0:
		return "wrong password; this device is now locked: the operator must run 'phonexd device unlock'"
	case e.FreeLeft > 0:
		return fmt.Sprintf("wrong password (%s left before delays, %d before lock-out)", attempts(e.FreeLeft), e.Remaining)
	default:
		return fmt.Sprintf("wrong password (%s left before lock-out; each further attempt waits longer)", attempts(e.Remaining))
	}
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func (e *WrongPasswordError) Unwrap() error { return ErrWrongPassword }

// Exists reports whether dir holds a profile.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, MetaFile))
	return err == nil
}

// Open unlocks the profile in dir: the password and the per-device secret
// released by the home cluster (an OPRF evaluation that the cluster counts
// and throttles) give the keys of the keystore and the database.
func Open(ctx context.Context, dir string, password []byte, o *Options) (*Profile, error) {
	meta, err := readMeta(filepath.Join(dir, MetaFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (enroll with phonex enroll, or give --profile)", ErrNoProfile, dir)
	}
	if err != nil {
		return nil, err
	}
	// A password change that stopped after the server accepted it leaves
	// staged files; whichever set the password opens is the live one.
	if staged, err := readMeta(filepath.Join(dir, MetaFile+stagedSuffix)); err == nil {
		p, err := unlock(ctx, dir, staged, password, o)
		if err == nil {
			if err := commitStaged(dir); err != nil {
				p.Close()
				return nil, err
			}
			return p.finishOpen(ctx, o)
		}
		if !errors.Is(err, ErrWrongPassword) {
			return nil, err
		}
		discardStaged(dir)
	}
	p, err := unlock(ctx, dir, meta, password, o)
	if err != nil {
		return nil, err
	}
	return p.finishOpen(ctx, o)
}

func unlock(ctx context.Context, dir string, meta *Meta, password []byte, o *Options) (*Profile, error) {
	caCert, err := ca.ReadCert(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	if ca.Fingerprint(caCert) != meta.CASHA256 {
		return nil, fmt.Errorf("%w: %s does not match the pinned CA", ErrTampered, CAFile)
	}
	o.progress("deriving keys from the password")
	sec, err := deriveSecrets(password, meta.KDF, meta.Salts.Scrypt, nil, meta.Salts.Keystore, meta.Salts.Database)
	if err != nil {
		return nil, err
	}
	bl, err := kdf.Blind(sec.keystore)
	if err != nil {
		return nil, err
	}
	cn, err := newConn(strings.Join(meta.ServerList(), ","), caCert, "", nil, nil)
	if err != nil {
		return nil, err
	}
	defer cn.close()
	o.progress("asking " + meta.Server + " for the device secret")
	var res api.UnlockResult
	if err := cn.call(ctx, "POST", api.PathUnlock, api.Unlock{Handle: meta.Handle, Blind: bl.Message()}, &res); err != nil {
		return nil, fmt.Errorf("unlock: %w", err)
	}
	y, err := bl.Finalize(res.Eval)
	if err != nil {
		return nil, err
	}
	ksKey, _ := kdf.Final(y, sec.keystore, kdf.Keystore)
	if !hmac.Equal(checkValue(ksKey), meta.Check) {
		return nil, &WrongPasswordError{FreeLeft: res.FreeLeft, Remaining: res.Remaining}
	}
	dbKey, _ := kdf.Final(y, sec.database, kdf.Database)
	p := &Profile{Dir: dir, Meta: meta, CA: caCert, ksKey: ksKey, log: o.logger(), now: time.Now}
	if err := p.readKeystore(); err != nil {
		return nil, err
	}
	if p.db, err = openLocalDB(ctx, filepath.Join(dir, DBFile), dbKey); err != nil {
		return nil, err
	}
	clear(dbKey)
	return p, nil
}

// finishOpen confirms the unlock (resetting the attempt counters) and renews
// the certificate when a third of its lifetime is left.
func (p *Profile) finishOpen(ctx context.Context, o *Options) (*Profile, error) {
	if err := p.connect(); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.c.call(ctx, "POST", api.PathUnlockConfirm, nil, nil); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.RenewIfDue(ctx); err != nil {
		p.log.Warn("certificate renewal failed; will retry at next open", "err", err)
	}
	return p, nil
}

func stagedFiles() []string {
	return []string{KeystoreFile, KexFile, DBFile, MetaFile}
}

// commitStaged renames the staged files over the live ones, profile.json
// last, so an interruption leaves a state Open can still resolve.
func commitStaged(dir string) error {
	for _, f := range stagedFiles() {
		src := filepath.Join(dir, f+stagedSuffix)
		if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.Rename(src, filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("commit password change: %w", err)
		}
	}
	return nil
}

func discardStaged(dir string) {
	for _, f := range stagedFiles() {
		os.Remove(filepath.Join(dir, f+stagedSuffix))
	}
}

// RenewIfDue renews the device certificate when less than a third of its
// lifetime is left. It keeps the keys.
func (p *Profile) RenewIfDue(ctx context.Context) error {
	life := p.Cert.NotAfter.Sub(p.Cert.NotBefore)
	if p.Cert.NotAfter.Sub(p.now()) > life/3 {
		return nil
	}
	return p.Renew(ctx)
}

// Renew asks for a fresh certificate for the same keys and rewrites the
// keystore with it.
func (p *Profile) Renew(ctx context.Context) error {
	csr, err := p.Keys.CSR(p.Device)
	if err != nil {
		return err
	}
	pub, sig, err := p.Keys.KexProof(p.Device)
	if err != nil {
		return err
	}
	var certs api.Certs
	if err := p.c.call(ctx, "POST", api.PathRenew, api.Renew{CSR: csr, KexPub: pub, KexSig: sig}, &certs); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if err := p.acceptCerts(certs, p.Device); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if err := p.writeKeystore(""); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	p.c.close()
	p.log.Info("device certificate renewed", "not_after", p.Cert.NotAfter)
	return p.connect()
}

// Whoami describes this device.
type Whoami struct {
	Identity string    `json:"identity"`
	Account  string    `json:"account"`
	Device   string    `json:"device"`
	Suite    string    `json:"suite"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Server   string    `json:"server"`
	CASHA256 string    `json:"ca_sha256"`
}

// Whoami reports the local identity, checked with the server.
func (p *Profile) Whoami(ctx context.Context) (Whoami, error) {
	var me api.Me
	if err := p.c.call(ctx, "GET", api.PathMe, nil, &me); err != nil {
		return Whoami{}, err
	}
	return Whoami{Identity: p.Device.String(), Account: p.Device.Account.String(), Device: p.Device.Name, Suite: string(p.Keys.Suite),
		Serial: ca.Serial(p.Cert), NotAfter: p.Cert.NotAfter.UTC(), Server: p.Meta.Server, CASHA256: p.Meta.CASHA256}, nil
}

// Devices lists the account's devices.
func (p *Profile) Devices(ctx context.Context) ([]api.Device, error) {
	var out []api.Device
	err := p.c.call(ctx, "GET", api.PathDevices, nil, &out)
	return out, err
}

// Contact is a contact with its verified devices.
type Contact struct {
	User    string          `json:"user"`
	Devices []ContactDevice `json:"devices"`
	Trust   string          `json:"trust"` // the least trusted device's (calltrust.go)
}

// ContactDevice is one verified device of a contact.
type ContactDevice struct {
	Name       string    `json:"name"`
	Suite      string    `json:"suite"`
	KeySHA256  string    `json:"key_sha256"`
	NotAfter   time.Time `json:"not_after"`
	KeyChanged bool      `json:"key_changed,omitempty"` // until trusted (TrustDevice)
	NewDevice  bool      `json:"new_device,omitempty"`  // added after the contact's first devices, until trusted
	Trust      string    `json:"trust"`                 // of its messaging identity: verified, unverified, unsafe
}

// verifyContact checks every device certificate of a contact against the CA
// and the contact's identity, and pins the device keys on first use. A
// certificate that fails is dropped and reported.
func (p *Profile) verifyContact(ctx context.Context, e api.Contact) (Contact, error) {
	out := Contact{User: e.User, Devices: []ContactDevice{}}
	acct, err := ident.ParseAccount(e.User)
	if err != nil {
		return out, fmt.Errorf("contact %q: %w", e.User, err)
	}
	known, err := p.db.accountPinned(ctx, acct.String())
	if err != nil {
		return out, err
	}
	for _, d := range e.Devices {
		cd, err := verifyContactDevice(p.caFor(acct, e.CA), e.User, d, p.now())
		if err != nil {
			p.log.Warn("contact device certificate refused", "err", err)
			continue
		}
		kex := ""
		if d.KexCert != nil {
			kex = cd.kexSHA
		}
		dev := ident.Device{Account: acct, Name: d.Name}
		if _, err := p.pinDevice(ctx, dev, cd.KeySHA256, kex, known); err != nil {
			return out, err
		}
		// Shown until the user trusts the device (TrustDevice).
		cd.KeyChanged = p.hasNotice(ctx, NoticeKeyChanged, dev.String())
		cd.NewDevice = p.hasNotice(ctx, NoticeNewDevice, dev.String())
		if cd.Trust, err = p.DeviceTrust(ctx, dev.String()); err != nil {
			return out, err
		}
		out.Devices = append(out.Devices, cd.ContactDevice)
	}
	out.Trust = deviceSetTrust(out.Devices)
	return out, nil
}

// Contacts fetches the contact list from the home cluster, verifies it and
// keeps a copy in the encrypted database.
func (p *Profile) Contacts(ctx context.Context) ([]Contact, error) {
	var entries []api.Contact
	if err := p.c.call(ctx, "GET", api.PathContacts, nil, &entries); err != nil {
		return nil, err
	}
	out := []Contact{}
	for _, e := range entries {
		c, err := p.verifyContact(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := p.db.saveContacts(ctx, entries, p.now()); err != nil {
		return nil, err
	}
	return out, nil
}

// AddContact adds user to the contact list.
func (p *Profile) AddContact(ctx context.Context, user string) (Contact, error) {
	var e api.Contact
	if err := p.c.call(ctx, "POST", api.PathContacts, api.ContactAdd{User: strings.TrimSpace(user)}, &e); err != nil {
		return Contact{}, fmt.Errorf("add contact %s: %w", user, err)
	}
	c, err := p.verifyContact(ctx, e)
	if err != nil {
		return c, err
	}
	return c, p.db.saveContact(ctx, e, p.now())
}

// RemoveContact removes user from the contact list.
func (p *Profile) RemoveContact(ctx context.Context, user string) error {
	if err := p.c.call(ctx, "DELETE", api.PathContacts+"/"+strings.TrimSpace(user), nil, nil); err != nil {
		return fmt.Errorf("remove contact %s: %w", user, err)
	}
	return p.db.deleteContact(ctx, user)
}
