package sdk

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/keys"
)

// KeySuite names the key algorithms of a device.
type KeySuite string

// Key suites.
const (
	// SuiteEC is Ed25519 for signatures and X25519 for key agreement; it is
	// the default and the one the ratchet protocol needs.
	SuiteEC KeySuite = "ec"
	// SuiteRSA is RSA for both, for peers of the 2014 protocols.
	SuiteRSA KeySuite = "rsa"
)

// KDFCost is the scrypt cost of the password KDF chain (RFC 7914 N = 2^LogN,
// r, p). The zero value selects the default, about 0.2 s and 64 MiB per
// guess; a lower cost weakens the profile against an attacker who also
// holds the cluster's OPRF key, so lower it only in tests (the cluster
// refuses a cost below its kdf_min_log_n).
type KDFCost struct {
	LogN, R, P int
}

// Options tune how a profile is created or opened. A nil *Options is valid.
type Options struct {
	// Logger receives diagnostics; it never gets message content, keys or
	// passwords. nil discards them.
	Logger *slog.Logger
	// Progress is called before each slow step (key generation, KDF).
	Progress func(step string)
	// KDF is the cost of a new password's KDF (Enroll, Login,
	// ChangePassword); Open reads the cost from the profile.
	KDF KDFCost
	// MinKDF is the weakest KDF cost this device accepts from the cluster
	// at Login and ChangePassword (zero: the built-in minimum), so that a
	// compromised cluster cannot make a new device's keys cheap to guess;
	// a weaker demand fails with ErrWeakKDF. It is a local choice, never
	// the cluster's.
	MinKDF KDFCost
}

func (o *Options) internal() *client.Options {
	if o == nil {
		return &client.Options{Log: slog.New(slog.DiscardHandler)}
	}
	io := &client.Options{Log: o.Logger, Progress: o.Progress, KDF: kdf.Params{LogN: o.KDF.LogN, R: o.KDF.R, P: o.KDF.P},
		MinKDF: kdf.Params{LogN: o.MinKDF.LogN, R: o.MinKDF.R, P: o.MinKDF.P}}
	if io.Log == nil {
		io.Log = slog.New(slog.DiscardHandler)
	}
	return io
}

// EnrollConfig is what Enroll and Login need.
type EnrollConfig struct {
	// Dir is the profile directory to create; it must not hold a profile.
	Dir string
	// User is the account, user@domain.
	User string
	// Device names this device; "" means DefaultDeviceName().
	Device string
	// Server is the home cluster's API address, host:port.
	Server string
	// CAFile (a PEM file) or CAFingerprint (its SHA-256, hex) pins the
	// cluster's CA; one is required. Enrollment fails with ErrCAMismatch
	// when the server presents another CA.
	CAFile, CAFingerprint string
	// Code is the one-time activation code of the first device (Enroll).
	Code string
	// Password protects the profile; Enroll chooses it, Login proves it.
	// The SDK does not keep it; the caller may wipe it afterwards.
	Password []byte
	// Suite is the key suite; "" means SuiteEC. RSABits (2048, 3072 or
	// 4096; 0 means 3072) applies to SuiteRSA.
	Suite   KeySuite
	RSABits int
}

func (c EnrollConfig) request() client.EnrollRequest {
	suite, bits := c.Suite, c.RSABits
	if suite == "" {
		suite = SuiteEC
	}
	if suite == SuiteRSA && bits == 0 {
		bits = 3072
	}
	if suite != SuiteRSA {
		bits = 0
	}
	return client.EnrollRequest{Dir: c.Dir, User: c.User, Device: c.Device, Server: c.Server, CAFile: c.CAFile,
		Fingerprint: c.CAFingerprint, Code: c.Code, Password: c.Password, Suite: keys.Suite(suite), RSABits: bits}
}

// Device is an open, unlocked device profile. Close it to forget its keys.
type Device struct {
	p *client.Profile
}

// Enroll makes the first device of an account with its activation code: the
// keys are generated here and only the public keys go to the cluster, which
// certifies them.
func Enroll(ctx context.Context, c EnrollConfig, o *Options) (*Device, error) {
	p, err := client.Enroll(ctx, c.request(), o.internal())
	if err != nil {
		return nil, fmt.Errorf("enroll %s: %w", c.User, err)
	}
	return &Device{p: p}, nil
}

// Login adds a further device to an existing account, proving the password
// to the cluster through the OPRF exchange (the password itself is never
// sent).
func Login(ctx context.Context, c EnrollConfig, o *Options) (*Device, error) {
	p, err := client.Login(ctx, c.request(), o.internal())
	if err != nil {
		return nil, fmt.Errorf("login %s: %w", c.User, err)
	}
	return &Device{p: p}, nil
}

// Open unlocks the profile in dir. It needs the home cluster, which performs
// the OPRF step of the KDF and counts failed attempts; a wrong password
// returns an error that wraps ErrWrongPassword.
func Open(ctx context.Context, dir string, password []byte, o *Options) (*Device, error) {
	p, err := client.Open(ctx, dir, password, o.internal())
	if err != nil {
		return nil, err
	}
	return &Device{p: p}, nil
}

// Exists reports whether dir holds a profile. It reads only the unencrypted
// metadata, which names no identity and no contact.
func Exists(dir string) bool { return client.Exists(dir) }

// DefaultDeviceName is the host name, reduced to the characters a device
// name allows.
func DefaultDeviceName() string { return client.DefaultDeviceName() }

// Close forgets the keys and closes the encrypted database.
func (d *Device) Close() error { return d.p.Close() }

// Identity is this device's name, user@domain/device.
func (d *Device) Identity() string { return d.p.Device.String() }

// Dir is the profile directory.
func (d *Device) Dir() string { return d.p.Dir }

// Info describes this device.
type Info struct {
	Identity string    `json:"identity"` // user@domain/device
	Account  string    `json:"account"`  // user@domain
	Device   string    `json:"device"`
	Suite    KeySuite  `json:"suite"`
	Serial   string    `json:"serial"`    // of the device certificate
	NotAfter time.Time `json:"not_after"` // the certificate's expiry
	Server   string    `json:"server"`    // the home cluster's API
	CASHA256 string    `json:"ca_sha256"` // the pinned CA
}

// Whoami reports this device's identity and certificate, checked with the
// cluster.
func (d *Device) Whoami(ctx context.Context) (Info, error) {
	w, err := d.p.Whoami(ctx)
	if err != nil {
		return Info{}, fmt.Errorf("whoami: %w", err)
	}
	return Info{Identity: w.Identity, Account: w.Account, Device: w.Device, Suite: KeySuite(w.Suite), Serial: w.Serial,
		NotAfter: w.NotAfter, Server: w.Server, CASHA256: w.CASHA256}, nil
}

// AccountDevice is one device of this account as the cluster lists it.
type AccountDevice struct {
	Name     string    `json:"name"`
	Suite    KeySuite  `json:"suite"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Status   string    `json:"status"` // active, revoked, ...
	Created  time.Time `json:"created"`
	Current  bool      `json:"current,omitempty"` // this device
}

// Devices lists the devices of this account.
func (d *Device) Devices(ctx context.Context) ([]AccountDevice, error) {
	ds, err := d.p.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	out := make([]AccountDevice, len(ds))
	for i, x := range ds {
		out[i] = AccountDevice{Name: x.Name, Suite: KeySuite(x.Suite), Serial: x.Serial, NotAfter: x.NotAfter, Status: x.Status, Created: x.Created, Current: x.Current}
	}
	return out, nil
}

// ChangePassword replaces the password and rotates every secret derived from
// it (the OPRF and login keys on the cluster, the keystore and database
// keys); an interruption leaves a profile that one of the two passwords
// opens. Other devices keep their password until changed there.
func (d *Device) ChangePassword(ctx context.Context, oldPassword, newPassword []byte, o *Options) error {
	if err := d.p.ChangePassword(ctx, oldPassword, newPassword, o.internal()); err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return nil
}

// Contact is an account in the contact list with its verified devices.
type Contact struct {
	User    string          `json:"user"`
	Devices []ContactDevice `json:"devices"`
	// Trust is the contact's: as far as its least trusted device.
	Trust Trust `json:"trust"`
}

// ContactDevice is one device of a contact. Its key was verified against the
// cluster's CA and pinned the first time it was seen.
type ContactDevice struct {
	Name      string    `json:"name"`
	Suite     KeySuite  `json:"suite"`
	KeySHA256 string    `json:"key_sha256"` // compare it with the contact out of band
	NotAfter  time.Time `json:"not_after"`
	// KeyChanged: the device's key differs from the one first seen; the
	// contact should be asked whether they re-enrolled it. Set until
	// Device.TrustDevice.
	KeyChanged bool `json:"key_changed,omitempty"`
	// NewDevice: the device was added after the contact's first ones; set
	// until Device.TrustDevice.
	NewDevice bool `json:"new_device,omitempty"`
	// Trust of the device's messaging identity: TrustVerified once a SAS
	// was confirmed in a call that bound its keys (and they have not
	// changed since), TrustUnsafe after a rejected SAS or a binding
	// mismatch, TrustUnverified otherwise.
	Trust Trust `json:"trust"`
}

func contact(c client.Contact) Contact {
	out := Contact{User: c.User, Devices: make([]ContactDevice, len(c.Devices)), Trust: Trust(c.Trust)}
	for i, d := range c.Devices {
		out.Devices[i] = ContactDevice{Name: d.Name, Suite: KeySuite(d.Suite), KeySHA256: d.KeySHA256, NotAfter: d.NotAfter,
			KeyChanged: d.KeyChanged, NewDevice: d.NewDevice, Trust: Trust(d.Trust)}
	}
	return out
}

// AddContact adds user (user@domain) to the contact list, which is also the
// list of who may send to this account.
func (d *Device) AddContact(ctx context.Context, user string) (Contact, error) {
	c, err := d.p.AddContact(ctx, user)
	if err != nil {
		return Contact{}, err
	}
	return contact(c), nil
}

// RemoveContact removes user from the contact list.
func (d *Device) RemoveContact(ctx context.Context, user string) error {
	return d.p.RemoveContact(ctx, user)
}

// Contacts fetches the contact list from the cluster, verifies the device
// certificates and keeps a copy in the encrypted database.
func (d *Device) Contacts(ctx context.Context) ([]Contact, error) {
	cs, err := d.p.Contacts(ctx)
	if err != nil {
		return nil, fmt.Errorf("contacts: %w", err)
	}
	out := make([]Contact, len(cs))
	for i, c := range cs {
		out[i] = contact(c)
	}
	return out, nil
}
