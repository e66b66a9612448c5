package client

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/keys"
	"github.com/phonex/phonex/internal/pow"
)

// Profile is an open (unlocked) device profile.
type Profile struct {
	Dir     string
	Meta    *Meta
	Device  ident.Device
	Keys    *keys.Device
	Cert    *x509.Certificate
	KexCert *x509.Certificate
	CA      *x509.Certificate

	ksKey []byte // K_keystore, kept while open to rewrite the keystore on renewal
	db    *localDB
	c     *conn
	log   *slog.Logger
	now   func() time.Time

	events func(Event) // SetEvents; nil drops events outside Listen
}

// Options tune how a profile is created or opened.
type Options struct {
	Log      *slog.Logger
	Progress func(step string) // called before each slow step
	KDF      kdf.Params        // zero: kdf.DefaultParams
	// MinKDF is the weakest KDF cost accepted from a server at login
	// (zero: kdf.MinParams). It is a local choice, never the server's.
	MinKDF kdf.Params
}

func (o *Options) minKDF() kdf.Params {
	if o != nil && o.MinKDF != (kdf.Params{}) {
		return o.MinKDF
	}
	return kdf.MinParams
}

func (o *Options) progress(s string) {
	if o != nil && o.Progress != nil {
		o.Progress(s)
	}
}

func (o *Options) logger() *slog.Logger {
	if o != nil && o.Log != nil {
		return o.Log
	}
	return slog.New(slog.DiscardHandler)
}

func (o *Options) params() kdf.Params {
	if o != nil && o.KDF != (kdf.Params{}) {
		return o.KDF
	}
	return kdf.DefaultParams
}

// checkValue lets Open tell a wrong password from a damaged keystore.
func checkValue(ksKey []byte) []byte {
	m := hmac.New(sha256.New, ksKey)
	m.Write([]byte("phonex/v1/check"))
	return m.Sum(nil)
}

func p12Password(ksKey []byte) string { return hex.EncodeToString(ksKey) }

// secrets derives the purpose secrets from the password.
type secrets struct{ auth, keystore, database []byte }

func deriveSecrets(password []byte, p kdf.Params, scryptSalt, authSalt, ksSalt, dbSalt []byte) (secrets, error) {
	base, err := kdf.Base(password, p, scryptSalt)
	if err != nil {
		return secrets{}, err
	}
	var s secrets
	if authSalt != nil {
		if s.auth, err = kdf.Secret(base, kdf.ServerAuth, authSalt); err != nil {
			return s, err
		}
	}
	if ksSalt != nil {
		if s.keystore, err = kdf.Secret(base, kdf.Keystore, ksSalt); err != nil {
			return s, err
		}
	}
	if dbSalt != nil {
		if s.database, err = kdf.Secret(base, kdf.Database, dbSalt); err != nil {
			return s, err
		}
	}
	return s, nil
}

// finalKeys finishes an OPRF exchange into the keys of a purpose.
func finalKey(bl *kdf.Blinding, eval, secret []byte, p kdf.Purpose) ([]byte, error) {
	y, err := bl.Finalize(eval)
	if err != nil {
		return nil, err
	}
	return kdf.Final(y, secret, p)
}

func authKey(kAuth []byte) ed25519.PrivateKey { return ed25519.NewKeyFromSeed(kAuth) }

// EnrollRequest is everything enrollment and login need.
type EnrollRequest struct {
	Dir         string
	User        string // user@domain
	Device      string
	Server      string // host:port of the API
	CAFile      string // either this
	Fingerprint string // or this
	Code        string // enrollment only
	Password    []byte
	Suite       keys.Suite
	RSABits     int
}

func (r *EnrollRequest) check() (ident.Device, error) {
	if _, err := os.Stat(filepath.Join(r.Dir, MetaFile)); err == nil {
		return ident.Device{}, fmt.Errorf("%w: %s (use another --profile)", ErrProfileExists, r.Dir)
	}
	if len(r.Password) < 8 {
		return ident.Device{}, ErrPasswordFormat
	}
	if r.Device == "" {
		r.Device = DefaultDeviceName()
	}
	dev, err := ident.ParseDevice(r.User + "/" + r.Device)
	if err != nil {
		return dev, err
	}
	if (r.CAFile == "") == (r.Fingerprint == "") {
		return dev, errors.New("give exactly one of --ca-file and --ca-fingerprint to pin the cluster's CA")
	}
	return dev, nil
}

func (r *EnrollRequest) connect() (*conn, func() *x509.Certificate, error) {
	if r.CAFile != "" {
		c, err := ca.ReadCert(r.CAFile)
		if err != nil {
			return nil, nil, err
		}
		if err := checkCA(c); err != nil {
			return nil, nil, fmt.Errorf("--ca-file %s: %w", r.CAFile, err)
		}
		cn, err := newConn(r.Server, c, "", nil, nil)
		return cn, func() *x509.Certificate { return c }, err
	}
	var found *x509.Certificate
	cn, err := newConn(r.Server, nil, r.Fingerprint, nil, func(c *x509.Certificate) { found = c })
	return cn, func() *x509.Certificate { return found }, err
}

// DefaultDeviceName is the host name, reduced to the allowed characters.
func DefaultDeviceName() string {
	h, _ := os.Hostname()
	out := []byte{}
	for _, c := range []byte(h) {
		switch {
		case c >= 'A' && c <= 'Z':
			out = append(out, c+32)
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			out = append(out, c)
		case c == '.':
			goto done
		}
	}
done:
	if len(out) == 0 || len(out) > 32 {
		return "device"
	}
	return string(out)
}

// Enroll makes the first device of an account with its activation code: the
// keys are generated here, the password chosen here.
func Enroll(ctx context.Context, r EnrollRequest, o *Options) (*Profile, error) {
	return enroll(ctx, r, o, false)
}

// Login adds a further device to an existing account with the password.
func Login(ctx context.Context, r EnrollRequest, o *Options) (*Profile, error) {
	return enroll(ctx, r, o, true)
}

// enroll runs enrollment or login. The server activates the device (and,
// at enrollment, consumes the code) only at the confirm step, which the
// device reaches after it has verified the certificates and written its
// profile; any failure before leaves no active device and no spent code.
func enroll(ctx context.Context, r EnrollRequest, o *Options, login bool) (_ *Profile, err error) {
	dev, err := r.check()
	if err != nil {
		return nil, err
	}
	cn, caOf, err := r.connect()
	if err != nil {
		return nil, err
	}
	defer cn.close()
	o.progress(fmt.Sprintf("generating %s keys", suiteName(r.Suite, r.RSABits)))
	k, err := keys.Generate(r.Suite, r.RSABits)
	if err != nil {
		return nil, err
	}
	devSalts := kdf.NewSalts()
	var acctSalts kdf.Salts
	params := o.params()
	var sec secrets
	var ablind, dblind *kdf.Blinding
	var evals api.OPRFEvals
	var challenge []byte
	if login {
		// The account's salts live on the server; the blinded inputs can
		// be formed only once they are known.
		var pp api.PasswordParams
		if err := cn.call(ctx, "POST", api.PathLoginParams, api.LoginParams{User: r.User}, &pp); err != nil {
			return nil, loginError(r.User, err)
		}
		// The parameters come from the server: a compromised one must not
		// be able to make this device's keys cheap to guess.
		if err := pp.KDF.AtLeast(o.minKDF()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWeakKDF, err)
		}
		acctSalts, params = pp.Salts, pp.KDF
	} else {
		acctSalts = kdf.Salts{Scrypt: devSalts.Scrypt, Auth: devSalts.Auth}
	}
	o.progress("deriving keys from the password")
	if sec, err = deriveSecrets(r.Password, params, acctSalts.Scrypt, acctSalts.Auth, devSalts.Keystore, devSalts.Database); err != nil {
		return nil, err
	}
	if ablind, err = kdf.Blind(sec.auth); err != nil {
		return nil, err
	}
	if dblind, err = kdf.Blind(sec.keystore); err != nil {
		return nil, err
	}
	o.progress("contacting " + r.Server)
	if login {
		var ch api.LoginChallenge
		if ch, err = loginBegin(ctx, cn, api.LoginBegin{User: r.User, Device: dev.Name, AccountBlind: ablind.Message(), DeviceBlind: dblind.Message()}, dev.Account.String(), o); err != nil {
			return nil, loginError(r.User, err)
		}
		evals, challenge = ch.OPRFEvals, ch.Challenge
	} else {
		err = cn.call(ctx, "POST", api.PathEnrollBegin, api.EnrollBegin{User: r.User, Code: r.Code, Device: dev.Name, AccountBlind: ablind.Message(), DeviceBlind: dblind.Message()}, &evals)
	}
	if err != nil {
		return nil, err
	}
	// From here the server holds a session (and, at enrollment, the
	// code's claim) until the confirm step: give it up on any failure, so
	// that the code can be used again at once.
	defer func() {
		if err != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			cn.call(actx, "POST", api.PathAbort, api.Confirm{Session: evals.Session}, nil)
			cancel()
		}
	}()
	kAuth, err := finalKey(ablind, evals.AccountEval, sec.auth, kdf.ServerAuth)
	if err != nil {
		return nil, err
	}
	y, err := dblind.Finalize(evals.DeviceEval)
	if err != nil {
		return nil, err
	}
	ksKey, _ := kdf.Final(y, sec.keystore, kdf.Keystore)
	dbKey, _ := kdf.Final(y, sec.database, kdf.Database)
	csr, err := k.CSR(dev)
	if err != nil {
		return nil, err
	}
	kexPub, kexSig, err := k.KexProof(dev)
	if err != nil {
		return nil, err
	}
	var certs api.Certs
	confirmPath := api.PathEnrollConfirm
	if login {
		sig := ed25519.Sign(authKey(kAuth), api.LoginMessage(evals.Session, challenge, dev.Name))
		err = cn.call(ctx, "POST", api.PathLoginFinish, api.LoginFinish{Session: evals.Session, Signature: sig, CSR: csr, KexPub: kexPub, KexSig: kexSig}, &certs)
		confirmPath = api.PathLoginConfirm
	} else {
		pub := authKey(kAuth).Public().(ed25519.PublicKey)
		err = cn.call(ctx, "POST", api.PathEnrollFinish, api.EnrollFinish{Session: evals.Session, CSR: csr, KexPub: kexPub, KexSig: kexSig, AuthPub: pub, KDF: params, Salts: acctSalts}, &certs)
	}
	if err != nil {
		return nil, err
	}
	caCert := caOf()
	p := &Profile{Dir: r.Dir, Device: dev, Keys: k, CA: caCert, ksKey: ksKey, log: o.logger(), now: time.Now}
	if err := p.acceptCerts(certs, dev); err != nil {
		return nil, err
	}
	servers, _ := ParseServers(r.Server) // checked by the connection
	p.Meta = &Meta{Version: 1, Server: servers[0], Servers: servers[1:], CASHA256: ca.Fingerprint(caCert), Handle: certs.Handle, KDF: params,
		Salts: kdf.Salts{Scrypt: acctSalts.Scrypt, Keystore: devSalts.Keystore, Database: devSalts.Database}, Check: checkValue(ksKey)}
	o.progress("saving the profile in " + r.Dir)
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create profile: %w", err)
	}
	// Until the server has confirmed, a failure removes what was written,
	// so the directory can be used again.
	defer func() {
		if err != nil {
			p.Close()
			for _, f := range []string{CAFile, KeystoreFile, KexFile, DBFile, MetaFile} {
				os.Remove(filepath.Join(r.Dir, f))
			}
		}
	}()
	if err := writeFile(filepath.Join(r.Dir, CAFile), ca.EncodePEM(caCert)); err != nil {
		return nil, err
	}
	if err := p.writeKeystore(""); err != nil {
		return nil, err
	}
	if p.db, err = openLocalDB(ctx, filepath.Join(r.Dir, DBFile), dbKey); err != nil {
		return nil, err
	}
	if err := p.connect(); err != nil {
		return nil, err
	}
	o.progress("activating " + dev.String())
	if err := p.c.call(ctx, "POST", confirmPath, api.Confirm{Session: evals.Session}, nil); err != nil {
		return nil, fmt.Errorf("activate %s: %w", dev, err)
	}
	// profile.json last: its presence marks a complete profile.
	if err := writeFile(filepath.Join(r.Dir, MetaFile), p.Meta.encode()); err != nil {
		return nil, err
	}
	// Publish the message key now, so contacts can write to this device
	// before it first listens.
	if err := p.publishKeys(ctx); err != nil {
		p.log.Warn("message key not published yet; it will be at the next open", "err", err)
	}
	if err := p.publishPrekeys(ctx); err != nil {
		p.log.Warn("ratchet prekeys not published yet; they will be at the next open", "err", err)
	}
	p.takeDirAnchor(ctx) // dnsanchor.go
	return p, nil
}

// loginBegin starts a login; when the server asks for the human check (after
// failed logins), it solves the proof of work and asks again.
func loginBegin(ctx context.Context, cn *conn, req api.LoginBegin, account string, o *Options) (api.LoginChallenge, error) {
	var ch api.LoginChallenge
	for tries := 0; ; tries++ {
		err := cn.call(ctx, "POST", api.PathLoginBegin, req, &ch)
		var ae *api.Error
		if tries == 2 || !errors.As(err, &ae) || ae.Code != api.CodeHumanCheck || ae.Challenge == nil {
			return ch, err
		}
		o.progress(fmt.Sprintf("the server asks for a proof of work after failed logins: solving a %d-bit puzzle", ae.Challenge.Bits))
		n, err := pow.Solve(ctx, account, ae.Challenge.Token)
		if err != nil {
			return ch, fmt.Errorf("human check: %w", err)
		}
		req.Proof = &api.Solution{Token: ae.Challenge.Token, Counter: n}
	}
}

// loginError gives a pending account its own error.
func loginError(user string, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.CodeNotEnrolled {
		return &notEnrolledError{user: user, err: ae}
	}
	return err
}

// notEnrolledError is ErrNotEnrolled and the server's answer.
type notEnrolledError struct {
	user string
	err  *api.Error
}

func (e *notEnrolledError) Error() string {
	return e.user + " has an activation code but no device yet: enroll its first device with phonex enroll and the code"
}

func (e *notEnrolledError) Unwrap() []error { return []error{ErrNotEnrolled, e.err} }

func suiteName(s keys.Suite, bits int) string {
	if s == keys.SuiteRSA {
		return fmt.Sprintf("rsa-%d", bits)
	}
	return "ec (Ed25519 + X25519)"
}

// acceptCerts checks what the CA returned: issued by the pinned CA, for this
// device, for our keys.
func (p *Profile) acceptCerts(c api.Certs, dev ident.Device) error {
	cert, err := x509.ParseCertificate(c.Cert)
	if err != nil {
		return fmt.Errorf("server returned a bad certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.CA)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("server returned a certificate that does not verify: %w", err)
	}
	if got, err := ident.FromURIs(cert.URIs); err != nil || got != dev {
		return fmt.Errorf("server returned a certificate for %v, not %s", got, dev)
	}
	if !p.Keys.SamePublic(cert) {
		return errors.New("server returned a certificate for another key")
	}
	p.Cert = cert
	if p.Keys.Kex != nil {
		kc, err := x509.ParseCertificate(c.KexCert)
		if err != nil {
			return fmt.Errorf("server returned a bad key-agreement certificate: %w", err)
		}
		if err := kc.CheckSignatureFrom(p.CA); err != nil {
			return fmt.Errorf("key-agreement certificate: %w", err)
		}
		kp, err := ca.KexPublic(kc)
		if err != nil || !kp.Equal(p.Keys.Kex.PublicKey()) {
			return errors.New("server returned a key-agreement certificate for another key")
		}
		p.KexCert = kc
	}
	return nil
}

// writeKeystore writes the PKCS#12 files (suffix "" or the staged suffix).
func (p *Profile) writeKeystore(suffix string) error {
	pw := p12Password(p.ksKey)
	data, err := pkcs12.Modern2026.Encode(p.Keys.Sign, p.Cert, []*x509.Certificate{p.CA}, pw)
	if err != nil {
		return fmt.Errorf("encode keystore: %w", err)
	}
	if err := writeFile(filepath.Join(p.Dir, KeystoreFile+suffix), data); err != nil {
		return err
	}
	if p.Keys.Kex == nil {
		return nil
	}
	data, err = pkcs12.Modern2026.Encode(p.Keys.Kex, p.KexCert, nil, pw)
	if err != nil {
		return fmt.Errorf("encode key-agreement keystore: %w", err)
	}
	return writeFile(filepath.Join(p.Dir, KexFile+suffix), data)
}

func (p *Profile) readKeystore() error {
	pw := p12Password(p.ksKey)
	data, err := os.ReadFile(filepath.Join(p.Dir, KeystoreFile))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTampered, err)
	}
	key, cert, chain, err := pkcs12.DecodeChain(data, pw)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrTampered, KeystoreFile, err)
	}
	k := &keys.Device{}
	switch sk := key.(type) {
	case ed25519.PrivateKey:
		k.Suite, k.Sign = keys.SuiteEC, sk
	case *rsa.PrivateKey:
		k.Suite, k.Sign = keys.SuiteRSA, sk
	default:
		return fmt.Errorf("%w: %s holds a %T", ErrTampered, KeystoreFile, key)
	}
	p.Keys, p.Cert = k, cert
	if len(chain) > 0 {
		p.CA = chain[0]
	}
	if k.Suite == keys.SuiteEC {
		data, err := os.ReadFile(filepath.Join(p.Dir, KexFile))
		if err != nil {
			return fmt.Errorf("%w: %v", ErrTampered, err)
		}
		kk, kc, err := pkcs12.Decode(data, pw)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrTampered, KexFile, err)
		}
		x, ok := kk.(*ecdh.PrivateKey)
		if !ok {
			return fmt.Errorf("%w: %s holds a %T", ErrTampered, KexFile, kk)
		}
		k.Kex, p.KexCert = x, kc
	}
	if !k.SamePublic(cert) {
		return fmt.Errorf("%w: keystore certificate and key differ", ErrTampered)
	}
	d, err := ident.FromURIs(cert.URIs)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrTampered, err)
	}
	p.Device = d
	return nil
}

// connect makes the mutual-TLS connection to the home cluster.
func (p *Profile) connect() error {
	tc := &tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Keys.Sign, Leaf: p.Cert}
	c, err := newConn(strings.Join(p.Meta.ServerList(), ","), p.CA, "", tc, nil)
	if err != nil {
		return err
	}
	p.c = c
	return nil
}

// Close forgets the keys and closes the database.
func (p *Profile) Close() error {
	if p.c != nil {
		p.c.close()
	}
	clear(p.ksKey)
	if p.db != nil {
		return p.db.close()
	}
	return nil
}
