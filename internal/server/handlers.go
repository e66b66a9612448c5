package server

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ca"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/kdf"
	"github.com/phonex/phonex/internal/pow"
	"github.com/phonex/phonex/internal/store"
	"github.com/phonex/phonex/internal/throttle"
)

// Handler is the API's HTTP handler.
func (n *Node) Handler() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET "+api.PathHealth, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, map[string]string{"status": "ok"}) })
	m.HandleFunc("POST "+api.PathEnrollBegin, n.open(n.enrollBegin))
	m.HandleFunc("POST "+api.PathEnrollFinish, n.open(n.enrollFinish))
	m.HandleFunc("POST "+api.PathEnrollConfirm, n.open(n.enrollConfirm))
	m.HandleFunc("POST "+api.PathLoginParams, n.open(n.loginParams))
	m.HandleFunc("POST "+api.PathLoginBegin, n.open(n.loginBegin))
	m.HandleFunc("POST "+api.PathLoginFinish, n.open(n.loginFinish))
	m.HandleFunc("POST "+api.PathLoginConfirm, n.open(n.loginConfirm))
	m.HandleFunc("POST "+api.PathAbort, n.open(n.abort))
	m.HandleFunc("POST "+api.PathUnlock, n.open(n.unlock))
	m.HandleFunc("POST "+api.PathUnlockConfirm, n.authed(n.unlockConfirm))
	m.HandleFunc("GET "+api.PathMe, n.authed(n.me))
	m.HandleFunc("POST "+api.PathRenew, n.authed(n.renew))
	m.HandleFunc("GET "+api.PathDevices, n.authed(n.devices))
	m.HandleFunc("GET "+api.PathContacts, n.authed(n.contacts))
	m.HandleFunc("POST "+api.PathContacts, n.authed(n.contactAdd))
	m.HandleFunc("DELETE "+api.PathContacts+"/{user}", n.authed(n.contactRemove))
	m.HandleFunc("POST "+api.PathPasswdBegin, n.authed(n.passwdBegin))
	m.HandleFunc("POST "+api.PathPasswdFinish, n.authed(n.passwdFinish))
	m.HandleFunc("PUT "+api.PathKeys, n.authed(n.putKeys))
	m.HandleFunc("GET "+api.PathKeys, n.authed(n.keyCount))
	m.HandleFunc("GET "+api.PathKeys+"/{user}", n.authed(n.getKeys))
	n.phoneRoutes(m) // phoneapi.go
	m.HandleFunc("GET "+api.PathTURN, n.authed(n.turnCredentials))
	n.fileRoutes(m)       // files.go
	n.federationRoutes(m) // federation.go
	n.directoryRoutes(m)  // directory.go
	n.dnsAnchorRoutes(m)  // dns_anchor.go
	return m
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (n *Node) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *api.Error
	if !errors.As(err, &ae) {
		n.log.Error("request failed", "path", r.URL.Path, "err", err)
		ae = errorf(http.StatusInternalServerError, api.CodeInternal, "internal error; the operator can find it in the server log")
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(ae.RetryAfter))))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(ae.Status)
	json.NewEncoder(w).Encode(api.ErrorBody{Error: ae})
}

// open wraps a handler that needs no client certificate.
func (n *Node) open(h func(ctx context.Context, r *http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := h(r.Context(), r)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		writeJSON(w, v)
	}
}

// caller is the authenticated device of a request.
type caller struct {
	id      ident.Device
	account store.Account
	device  store.Device
	cert    *x509.Certificate
}

// authed wraps a handler that needs a valid, current, unrevoked device
// certificate of an enabled account.
func (n *Node) authed(h func(ctx context.Context, r *http.Request, c *caller) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := n.authenticate(r)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		v, err := h(r.Context(), r, c)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		writeJSON(w, v)
	}
}

func (n *Node) authenticate(r *http.Request) (*caller, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, errorf(http.StatusUnauthorized, api.CodeCertRequired, "this call needs the device certificate; enroll or log in first")
	}
	return n.checkCert(r.Context(), r.TLS.PeerCertificates[0])
}

// checkCert finds the enrolled, current, unrevoked device of an enabled
// account that a certificate belongs to. The TLS handshake has proved that
// the peer holds the certificate's key.
func (n *Node) checkCert(ctx context.Context, cert *x509.Certificate) (*caller, error) {
	id, err := n.ca.VerifyDevice(cert, n.now())
	switch {
	case errors.Is(err, ca.ErrUnknownCA):
		return nil, errorf(http.StatusUnauthorized, api.CodeCertUnknownCA, "the certificate was not issued by the CA of %s", n.cfg.Domain)
	case errors.Is(err, ca.ErrExpired), errors.Is(err, ca.ErrNotYetValid):
		return nil, errorf(http.StatusUnauthorized, api.CodeCertExpired, "the device certificate is not valid now (%v); log in again to re-enroll this device", err)
	case err != nil:
		return nil, errorf(http.StatusUnauthorized, api.CodeCertUnknown, "the certificate names no device: %v", err)
	}
	d, err := n.st.DeviceByName(ctx, id.Account.String(), id.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusUnauthorized, api.CodeCertUnknown, "device %s is not enrolled (removed?)", id)
	}
	if err != nil {
		return nil, err
	}
	if d.Status == store.StatusRevoked {
		return nil, errorf(http.StatusForbidden, api.CodeDeviceRevoked, "device %s was revoked by the operator", id)
	}
	if d.Serial != ca.Serial(cert) {
		return nil, errorf(http.StatusUnauthorized, api.CodeCertSuperseded, "this certificate of %s was replaced by a newer one", id)
	}
	if !keysEqual(d.Cert, cert) {
		return nil, errorf(http.StatusForbidden, api.CodeIdentityMismatch, "certificate does not match the enrolled device %s", id)
	}
	a, err := n.st.Account(ctx, id.Account.String())
	if err != nil {
		return nil, err
	}
	if a.Status == store.StatusDisabled {
		return nil, errorf(http.StatusForbidden, api.CodeAccountDisabled, "account %s is disabled; ask the operator", a.Name)
	}
	return &caller{id: id, account: a, device: d, cert: cert}, nil
}

func keysEqual(stored []byte, cert *x509.Certificate) bool {
	c, err := x509.ParseCertificate(stored)
	return err == nil && c.Equal(cert)
}

func decode(r *http.Request, v any) error {
	if err := api.Decode(r.Body, v); err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "malformed request: %v", err)
	}
	return nil
}

func (n *Node) parseLocal(user string) (ident.Account, error) {
	a, err := ident.ParseAccount(user)
	if err != nil {
		return a, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if a.Domain != n.cfg.Domain {
		return a, errorf(http.StatusBadRequest, api.CodeFederation, "%s is not an account of this cluster (%s); federation is not supported yet", a, n.cfg.Domain)
	}
	return a, nil
}

func (n *Node) evaluate(k kdf.OPRFKey, blind []byte) ([]byte, error) {
	ev, err := k.Evaluate(blind)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	return ev, nil
}

func newKeys() (kdf.OPRFKey, kdf.OPRFKey, error) {
	a, err := kdf.NewOPRFKey()
	if err != nil {
		return a, a, err
	}
	d, err := kdf.NewOPRFKey()
	return a, d, err
}

// enrollBegin checks the activation code before anything costs the node
// work: a session is created and the OPRFs evaluated only for a code that
// is valid, unexpired, unused and not claimed by another enrollment.
func (n *Node) enrollBegin(ctx context.Context, r *http.Request) (any, error) {
	var req api.EnrollBegin
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	acct, err := n.parseLocal(req.User)
	if err != nil {
		return nil, err
	}
	if err := ident.CheckDeviceName(req.Device); err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	a, err := n.st.Account(ctx, acct.String())
	if errors.Is(err, store.ErrNotFound) {
		// Same answer as a wrong code: a code holder learns nothing more.
		return nil, codeError(store.ErrCodeInvalid)
	}
	if err != nil {
		return nil, err
	}
	if len(a.Secrets.AuthPub) != 0 {
		return nil, errorf(http.StatusConflict, api.CodeCodeUsed, "account %s is already enrolled; use phonex login on further devices", a.Name)
	}
	if err := n.sessionRoom(a.Name); err != nil {
		return nil, err
	}
	p := &pending{kind: "enroll", account: acct.String(), device: req.Device, codeHash: CodeHash(req.Code)}
	id := newSessionID()
	now := n.now()
	if p.accountID, err = n.st.ClaimCode(ctx, p.codeHash, a.ID, id, now.Add(sessionTTL), now); err != nil {
		return nil, codeError(err)
	}
	p.claim = id
	out, err := n.enrollEvaluate(p, &req)
	if err == nil {
		err = n.putSession(id, p)
	}
	if err != nil {
		// No session holds the claim: free the code for the next try.
		if rerr := n.st.ReleaseCode(ctx, p.codeHash, id); rerr != nil {
			n.log.Error("release activation code", "err", rerr)
		}
		return nil, err
	}
	return out, nil
}

func (n *Node) enrollEvaluate(p *pending, req *api.EnrollBegin) (api.OPRFEvals, error) {
	out := api.OPRFEvals{Session: p.claim}
	var err error
	if p.accountKey, p.deviceKey, err = newKeys(); err != nil {
		return out, err
	}
	if out.AccountEval, err = n.evaluate(p.accountKey, req.AccountBlind); err != nil {
		return out, err
	}
	out.DeviceEval, err = n.evaluate(p.deviceKey, req.DeviceBlind)
	return out, err
}

func codeError(err error) error {
	switch {
	case errors.Is(err, store.ErrCodeInvalid):
		return errorf(http.StatusForbidden, api.CodeCodeInvalid, "activation code is not valid for this account; check it or ask the operator for a new one")
	case errors.Is(err, store.ErrCodeExpired):
		return errorf(http.StatusForbidden, api.CodeCodeExpired, "activation code has expired; ask the operator for a new one")
	case errors.Is(err, store.ErrCodeUsed):
		return errorf(http.StatusForbidden, api.CodeCodeUsed, "activation code was already used; use phonex login for further devices")
	case errors.Is(err, store.ErrCodeBusy):
		return errorf(http.StatusConflict, api.CodeCodeBusy, "activation code is being used by another enrollment right now")
	}
	return err
}

func (n *Node) checkPasswordMaterial(params kdf.Params, salts kdf.Salts, authPub []byte) error {
	if err := params.AtLeast(n.kdfMin); err != nil {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if len(salts.Scrypt) != kdf.SaltSize || len(salts.Auth) != kdf.SaltSize {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "salts must be %d bytes", kdf.SaltSize)
	}
	if len(authPub) != ed25519.PublicKeySize {
		return errorf(http.StatusBadRequest, api.CodeBadRequest, "auth_pub must be an Ed25519 public key")
	}
	return nil
}

func (n *Node) accountSecrets(name string, k kdf.OPRFKey, params kdf.Params, salts kdf.Salts, authPub []byte) (store.AccountSecrets, error) {
	kb, err := k.MarshalBinary()
	if err != nil {
		return store.AccountSecrets{}, err
	}
	pj, _ := json.Marshal(params)
	sj, _ := json.Marshal(kdf.Salts{Scrypt: salts.Scrypt, Auth: salts.Auth})
	return store.AccountSecrets{KDF: pj, Salts: sj, SealedOPRF: n.seal.seal(kb, "oprf/account/"+name), AuthPub: authPub}, nil
}

func (n *Node) issue(csr []byte, dev ident.Device, kexPub, kexSig []byte) (*ca.Issued, error) {
	is, err := n.ca.IssueDevice(csr, dev, kexPub, kexSig, n.cfg.CertValidity, n.now())
	if err != nil {
		if errors.Is(err, ca.ErrBadCSR) {
			return nil, errorf(http.StatusBadRequest, api.CodeIdentityMismatch, "%v", err)
		}
		return nil, err
	}
	return is, nil
}

func newHandle() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}

func (n *Node) newDevice(p *pending, is *ca.Issued) (store.Device, error) {
	kb, err := p.deviceKey.MarshalBinary()
	if err != nil {
		return store.Device{}, err
	}
	handle := newHandle()
	d := store.Device{AccountID: p.accountID, Name: p.device, Handle: handle, Serial: ca.Serial(is.Sign), Cert: is.Sign.Raw,
		NotAfter: is.Sign.NotAfter, SealedOPRF: n.seal.seal(kb, "oprf/device/"+handle), Created: n.now()}
	d.Suite = "rsa"
	if is.Kex != nil {
		d.Suite, d.KexCert = "ec", is.Kex.Raw
	}
	return d, nil
}

func (n *Node) certs(d store.Device) api.Certs {
	return api.Certs{Device: ident.Device{Account: mustAccount(d.Account), Name: d.Name}.String(), Handle: d.Handle, Cert: d.Cert, KexCert: d.KexCert, CACert: n.ca.Cert.Raw}
}

func mustAccount(s string) ident.Account {
	a, _ := ident.ParseAccount(s)
	return a
}

// enrollFinish issues the first device's certificate but stores nothing:
// the code is consumed, the password material stored and the device
// activated in one transaction by enrollConfirm, which the device calls once
// it has verified the certificate and saved its profile. An enrollment that
// fails on the device leaves no active device and an unspent code.
func (n *Node) enrollFinish(ctx context.Context, r *http.Request) (_ any, err error) {
	var req api.EnrollFinish
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	p, err := n.takeSession(req.Session, "enroll")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			// The session is gone: free the code for the next try.
			if rerr := n.st.ReleaseCode(ctx, p.codeHash, p.claim); rerr != nil {
				n.log.Error("release activation code", "err", rerr)
			}
		}
	}()
	if err := n.checkPasswordMaterial(req.KDF, req.Salts, req.AuthPub); err != nil {
		return nil, err
	}
	dev := ident.Device{Account: mustAccount(p.account), Name: p.device}
	is, err := n.issue(req.CSR, dev, req.KexPub, req.KexSig)
	if err != nil {
		return nil, err
	}
	if p.secrets, err = n.accountSecrets(p.account, p.accountKey, req.KDF, req.Salts, req.AuthPub); err != nil {
		return nil, err
	}
	if p.dev, err = n.newDevice(p, is); err != nil {
		return nil, err
	}
	// Hold the code for the confirm step too.
	now := n.now()
	if _, err := n.st.ClaimCode(ctx, p.codeHash, p.accountID, p.claim, now.Add(sessionTTL), now); err != nil {
		return nil, codeError(err)
	}
	p.kind, p.issued = "enroll-confirm", is.Sign
	if err := n.putSession(req.Session, p); err != nil {
		return nil, err
	}
	d := p.dev
	d.Account = p.account
	return n.certs(d), nil
}

// confirmSession takes a confirm session and checks that the request comes
// over mutual TLS with the certificate the session issued: the handshake
// proves the device holds its key, so it has the certificate in hand.
func (n *Node) confirmSession(r *http.Request, kind string) (*pending, error) {
	var req api.Confirm
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, errorf(http.StatusUnauthorized, api.CodeCertRequired, "confirm with the new device certificate")
	}
	n.mu.Lock()
	p, ok := n.sessions[req.Session]
	if ok && p.kind == kind && p.issued.Equal(r.TLS.PeerCertificates[0]) {
		delete(n.sessions, req.Session)
	} else {
		p = nil
	}
	n.mu.Unlock()
	if p == nil || n.now().After(p.expires) {
		return nil, errorf(http.StatusBadRequest, api.CodeSessionExpired, "%s session unknown or expired, or another certificate; start again", kind)
	}
	return p, nil
}

// abort drops an enrollment or login in progress; the session id, a random
// secret known only to the device that started it, is the authority.
func (n *Node) abort(ctx context.Context, r *http.Request) (any, error) {
	var req api.Confirm
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	n.mu.Lock()
	p, ok := n.sessions[req.Session]
	delete(n.sessions, req.Session)
	n.mu.Unlock()
	if ok && p.claim != "" {
		if err := n.st.ReleaseCode(ctx, p.codeHash, p.claim); err != nil {
			return nil, err
		}
	}
	return map[string]string{"status": "ok"}, nil
}

func (n *Node) enrollConfirm(ctx context.Context, r *http.Request) (any, error) {
	p, err := n.confirmSession(r, "enroll-confirm")
	if err != nil {
		return nil, err
	}
	d, err := n.st.Enroll(ctx, p.codeHash, p.claim, p.secrets, p.dev, n.now())
	if err != nil {
		return nil, codeError(err)
	}
	n.log.Info("device enrolled", "device", p.account+"/"+d.Name, "suite", d.Suite)
	return map[string]string{"status": "ok"}, nil
}

// throttled turns a verdict into an API error, or nil if an attempt may start.
func throttled(v throttle.Verdict, what string) *api.Error {
	if v.Locked {
		return errorf(http.StatusLocked, api.CodeLocked, "%s is locked after too many wrong passwords; the operator must run 'phonexd device unlock'", what)
	}
	if v.RetryAfter > 0 {
		e := errorf(http.StatusTooManyRequests, api.CodeThrottled, "too many wrong passwords for %s; wait %s before the next attempt", what, v.RetryAfter.Round(time.Second))
		e.RetryAfter = v.RetryAfter.Seconds()
		rem := v.Remaining
		e.Remaining = &rem
		return e
	}
	return nil
}

func (n *Node) openKey(sealed []byte, label string) (kdf.OPRFKey, error) {
	b, err := n.seal.open(sealed, label)
	if err != nil {
		return kdf.OPRFKey{}, err
	}
	return kdf.ParseOPRFKey(b)
}

// loginAccount finds an enrolled, enabled account for a password login.
func (n *Node) loginAccount(ctx context.Context, user string) (store.Account, error) {
	acct, err := n.parseLocal(user)
	if err != nil {
		return store.Account{}, err
	}
	a, err := n.st.Account(ctx, acct.String())
	if errors.Is(err, store.ErrNotFound) {
		return a, errorf(http.StatusNotFound, api.CodeUnknownUser, "no account %s on this cluster", acct)
	}
	if err != nil {
		return a, err
	}
	// Whether an account exists is already told by unknown_user above; that
	// it waits for its activation code tells a stranger nothing he can use
	// without the code (docs/security.md).
	if len(a.Secrets.AuthPub) == 0 && a.Status != store.StatusDisabled {
		return a, errorf(http.StatusConflict, api.CodeNotEnrolled, "account %s is not enrolled yet: enroll its first device with phonex enroll and the activation code", acct)
	}
	if a.Status == store.StatusDisabled {
		return a, errorf(http.StatusForbidden, api.CodeAccountDisabled, "account %s is disabled; ask the operator", a.Name)
	}
	return a, nil
}

func (n *Node) loginParams(ctx context.Context, r *http.Request) (any, error) {
	var req api.LoginParams
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	a, err := n.loginAccount(ctx, req.User)
	if err != nil {
		return nil, err
	}
	var out api.PasswordParams
	if err := json.Unmarshal(a.Secrets.KDF, &out.KDF); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(a.Secrets.Salts, &out.Salts); err != nil {
		return nil, err
	}
	return out, nil
}

// loginBegin starts a new-device login. Anyone who knows the account's
// name can call it, so it counts only against the account's login counter,
// never against the counters that guard its devices' unlocks.
func (n *Node) loginBegin(ctx context.Context, r *http.Request) (any, error) {
	var req api.LoginBegin
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := ident.CheckDeviceName(req.Device); err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	a, err := n.loginAccount(ctx, req.User)
	if err != nil {
		return nil, err
	}
	if _, err := n.st.DeviceByName(ctx, a.Name, req.Device); err == nil {
		return nil, errorf(http.StatusConflict, api.CodeDeviceExists, "account %s already has a device named %q; choose another with --device", a.Name, req.Device)
	}
	if err := n.sessionRoom(a.Name); err != nil {
		return nil, err
	}
	human, why, err := n.humanCheck(ctx, a.Name, req.Proof)
	if err != nil {
		return nil, err
	}
	_, _, loginPol := n.throttles(ctx, a.Name)
	if _, err := n.attempt(ctx, "new-device login to account "+a.Name, a.Name, human, subject{store.SubjectLogin, a.ID, loginPol}); err != nil {
		var ae *api.Error
		if why != "" && errors.As(err, &ae) && ae.Code == api.CodeHumanCheck {
			ae.Message += " (the proof sent was refused: " + why + ")"
		}
		return nil, err
	}
	ak, err := n.openKey(a.Secrets.SealedOPRF, "oprf/account/"+a.Name)
	if err != nil {
		return nil, err
	}
	p := &pending{kind: "login", accountID: a.ID, account: a.Name, device: req.Device, accountKey: ak, challenge: make([]byte, 32)}
	rand.Read(p.challenge)
	if p.deviceKey, err = kdf.NewOPRFKey(); err != nil {
		return nil, err
	}
	out := api.LoginChallenge{Challenge: p.challenge}
	if out.AccountEval, err = n.evaluate(ak, req.AccountBlind); err != nil {
		return nil, err
	}
	if out.DeviceEval, err = n.evaluate(p.deviceKey, req.DeviceBlind); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(a.Secrets.KDF, &out.KDF); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(a.Secrets.Salts, &out.Salts); err != nil {
		return nil, err
	}
	if out.Session, err = n.newSession(p); err != nil {
		return nil, err
	}
	return out, nil
}

// powTTL is how long a human-check token may be solved and used.
const powTTL = 2 * time.Minute

// humanCheck verifies and spends a proof of work, if one came. It reports
// whether a valid one did, and else why the one sent was refused (forged,
// expired, too easy, wrong or replayed): a refused proof counts as none, so
// the answer, if a check is needed, carries a fresh challenge.
func (n *Node) humanCheck(ctx context.Context, subject string, s *api.Solution) (bool, string, error) {
	if s == nil {
		return false, "", nil
	}
	c, err := pow.Verify(n.powKey, subject, s.Token, s.Counter, n.cfg.LoginPoWBits, n.now())
	if err != nil {
		return false, err.Error(), nil
	}
	h := sha256.Sum256(s.Token)
	if err := n.st.SpendNonce(ctx, h[:], c.Expires, n.now()); errors.Is(err, store.ErrReplayed) {
		return false, "proof of work already used", nil
	} else if err != nil {
		return false, "", err
	}
	return true, "", nil
}

// subject is one attempt counter and the policy that judges it.
type subject struct {
	kind store.Subject
	id   int64
	pol  throttle.Policy
}

// attempt judges and counts one password attempt against every subject as
// one atomic step in the store (the decision is made inside the
// transaction that increments the counters, so concurrent attempts cannot
// all pass on the same old counters). It returns the combined verdict as it
// stands after this attempt. human says a valid human check for powSubject
// came with it; a refusal for want of one carries a challenge for powSubject.
func (n *Node) attempt(ctx context.Context, what, powSubject string, human bool, subjects ...subject) (throttle.Verdict, error) {
	now := n.now()
	refs := make([]store.AttemptSubject, len(subjects))
	for i, s := range subjects {
		refs[i] = store.AttemptSubject{Subject: s.kind, ID: s.id}
	}
	var refused *api.Error
	var before throttle.Verdict
	counters, err := n.st.TryAttempt(ctx, now, refs, func(cs []store.Attempts) error {
		for i, c := range cs {
			v := subjects[i].pol.Check(throttle.State(c), now)
			if i == 0 {
				before = v
			} else {
				before = throttle.Combine(before, v)
			}
		}
		if e := throttled(before, what); e != nil {
			if e.Code == api.CodeLocked && powSubject != "" {
				e.Message = fmt.Sprintf("%s is locked after too many wrong passwords (existing devices still open); the operator must run 'phonexd device unlock %s'", what, powSubject)
			}
			refused = e
			return e
		}
		if before.Human && !human {
			refused = errorf(http.StatusForbidden, api.CodeHumanCheck, "too many failed attempts for %s: solve the proof of work to try again", what)
			refused.Challenge = &api.Challenge{Token: pow.Issue(n.powKey, powSubject, n.cfg.LoginPoWBits, now.Add(powTTL)), Bits: n.cfg.LoginPoWBits}
			rem := before.Remaining
			refused.Remaining = &rem
			return refused
		}
		return nil
	})
	if refused != nil {
		n.metrics.AuthRefused(authKind(subjects), refusedState(refused))
		n.log.Warn("password attempt refused", "subject", what, "locked", before.Locked, "human_check", refused.Code == api.CodeHumanCheck)
		return before, refused
	}
	if err != nil {
		return before, err
	}
	var after throttle.Verdict
	for i, c := range counters {
		v := subjects[i].pol.After(throttle.State(c), now)
		if i == 0 {
			after = v
		} else {
			after = throttle.Combine(after, v)
		}
	}
	return after, nil
}

func (n *Node) resetAttempts(ctx context.Context, accountID, deviceID int64) error {
	if err := n.st.ResetAttempts(ctx, store.SubjectAccount, accountID); err != nil {
		return err
	}
	if deviceID != 0 {
		return n.st.ResetAttempts(ctx, store.SubjectDevice, deviceID)
	}
	return nil
}

// loginFinish checks the password proof and issues the new device's
// certificate; loginConfirm stores the device once it has accepted it.
func (n *Node) loginFinish(ctx context.Context, r *http.Request) (any, error) {
	var req api.LoginFinish
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	p, err := n.takeSession(req.Session, "login")
	if err != nil {
		return nil, err
	}
	a, err := n.st.Account(ctx, p.account)
	if err != nil {
		return nil, err
	}
	if len(a.Secrets.AuthPub) != ed25519.PublicKeySize || !ed25519.Verify(a.Secrets.AuthPub, api.LoginMessage(req.Session, p.challenge, p.device), req.Signature) {
		n.log.Warn("wrong password at login", "account", a.Name)
		return nil, n.wrongPassword(ctx, a.Name, store.SubjectLogin)
	}
	// The password is proven: the login counter restarts. The unlock
	// counters of the account and its devices are not touched.
	if err := n.st.ResetAttempts(ctx, store.SubjectLogin, a.ID); err != nil {
		return nil, err
	}
	dev := ident.Device{Account: mustAccount(p.account), Name: p.device}
	is, err := n.issue(req.CSR, dev, req.KexPub, req.KexSig)
	if err != nil {
		return nil, err
	}
	if p.dev, err = n.newDevice(p, is); err != nil {
		return nil, err
	}
	p.kind, p.issued = "login-confirm", is.Sign
	if err := n.putSession(req.Session, p); err != nil {
		return nil, err
	}
	d := p.dev
	d.Account = a.Name
	return n.certs(d), nil
}

func (n *Node) loginConfirm(ctx context.Context, r *http.Request) (any, error) {
	p, err := n.confirmSession(r, "login-confirm")
	if err != nil {
		return nil, err
	}
	if _, err := n.st.CreateDevice(ctx, p.dev); err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, errorf(http.StatusConflict, api.CodeDeviceExists, "account %s already has a device named %q", p.account, p.device)
		}
		return nil, err
	}
	n.log.Info("device added by password login", "device", p.account+"/"+p.device, "suite", p.dev.Suite)
	return map[string]string{"status": "ok"}, nil
}

// wrongPassword answers a failed password proof with the attempts left on
// the counter that the attempt was counted against.
func (n *Node) wrongPassword(ctx context.Context, name string, subj store.Subject) error {
	n.metrics.AuthFailed(authKindOf(subj))
	e := errorf(http.StatusUnauthorized, api.CodeWrongPassword, "wrong password for %s", name)
	if fresh, err := n.st.Account(ctx, name); err == nil {
		_, accPol, loginPol := n.throttles(ctx, name)
		v := accPol.Check(throttle.State(fresh.Attempt), n.now())
		if subj == store.SubjectLogin {
			v = loginPol.Check(throttle.State(fresh.Login), n.now())
		}
		e.Remaining = &v.Remaining
	}
	return e
}

func (n *Node) unlock(ctx context.Context, r *http.Request) (any, error) {
	var req api.Unlock
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	d, err := n.st.DeviceByHandle(ctx, req.Handle)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, api.CodeUnknownDevice, "this cluster does not know this device (removed by the operator?)")
	}
	if err != nil {
		return nil, err
	}
	if d.Status == store.StatusRevoked {
		return nil, errorf(http.StatusForbidden, api.CodeDeviceRevoked, "device %s/%s was revoked by the operator", d.Account, d.Name)
	}
	if d.Suite == SuiteSIP {
		return nil, errorf(http.StatusNotFound, api.CodeUnknownDevice, "standard SIP devices have no profile to unlock")
	}
	a, err := n.st.Account(ctx, d.Account)
	if err != nil {
		return nil, err
	}
	if a.Status == store.StatusDisabled {
		return nil, errorf(http.StatusForbidden, api.CodeAccountDisabled, "account %s is disabled; ask the operator", a.Name)
	}
	devPol, accPol, _ := n.throttles(ctx, a.Name)
	v, err := n.attempt(ctx, "device "+a.Name+"/"+d.Name, "", false,
		subject{store.SubjectDevice, d.ID, devPol}, subject{store.SubjectAccount, a.ID, accPol})
	if err != nil {
		return nil, err
	}
	k, err := n.openKey(d.SealedOPRF, "oprf/device/"+d.Handle)
	if err != nil {
		return nil, err
	}
	ev, err := n.evaluate(k, req.Blind)
	if err != nil {
		return nil, err
	}
	return api.UnlockResult{Eval: ev, FreeLeft: v.FreeLeft, Remaining: v.Remaining}, nil
}

func (n *Node) unlockConfirm(ctx context.Context, r *http.Request, c *caller) (any, error) {
	if err := n.resetAttempts(ctx, c.account.ID, c.device.ID); err != nil {
		return nil, err
	}
	return map[string]string{"status": "ok"}, nil
}

func (n *Node) me(ctx context.Context, r *http.Request, c *caller) (any, error) {
	out := api.Me{Device: c.id.String(), Suite: c.device.Suite, Serial: c.device.Serial, NotAfter: c.device.NotAfter, SIP: n.sipAddr()}
	if err := json.Unmarshal(c.account.Secrets.KDF, &out.KDF); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(c.account.Secrets.Salts, &out.Salts); err != nil {
		return nil, err
	}
	return out, nil
}

func (n *Node) renew(ctx context.Context, r *http.Request, c *caller) (any, error) {
	var req api.Renew
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(req.CSR)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "malformed certificate request: %v", err)
	}
	if got, err := ident.FromURIs(csr.URIs); err != nil || got != c.id {
		return nil, errorf(http.StatusForbidden, api.CodeIdentityMismatch, "a device may renew only its own certificate (%s)", c.id)
	}
	type equaler interface{ Equal(x crypto.PublicKey) bool }
	if k, ok := csr.PublicKey.(equaler); !ok || !k.Equal(c.cert.PublicKey) {
		return nil, errorf(http.StatusForbidden, api.CodeIdentityMismatch, "renewal must keep the device's key; enroll a new device for new keys")
	}
	is, err := n.issue(req.CSR, c.id, req.KexPub, req.KexSig)
	if err != nil {
		return nil, err
	}
	var kex []byte
	if is.Kex != nil {
		kex = is.Kex.Raw
	}
	if err := n.st.UpdateDeviceCert(ctx, c.device.ID, ca.Serial(is.Sign), is.Sign.Raw, kex, is.Sign.NotAfter); err != nil {
		return nil, err
	}
	n.log.Info("device certificate renewed", "device", c.id.String())
	d := c.device
	d.Cert, d.KexCert, d.Account = is.Sign.Raw, kex, c.account.Name
	return n.certs(d), nil
}

func (n *Node) devices(ctx context.Context, r *http.Request, c *caller) (any, error) {
	ds, err := n.st.Devices(ctx, c.account.ID)
	if err != nil {
		return nil, err
	}
	out := []api.Device{}
	for _, d := range ds {
		out = append(out, api.Device{Name: d.Name, Suite: d.Suite, Serial: d.Serial, NotAfter: d.NotAfter, Status: d.Status, Created: d.Created, Current: d.ID == c.device.ID})
	}
	return out, nil
}

func (n *Node) contactEntry(ctx context.Context, name string) (api.Contact, error) {
	out := api.Contact{User: name, Devices: []api.ContactDevice{}}
	a, err := n.st.Account(ctx, name)
	if err != nil {
		return out, err
	}
	ds, err := n.st.Devices(ctx, a.ID)
	if err != nil {
		return out, err
	}
	for _, d := range ds {
		if d.Status == store.StatusActive && d.Suite != SuiteSIP {
			out.Devices = append(out.Devices, api.ContactDevice{Name: d.Name, Cert: d.Cert, KexCert: d.KexCert})
		}
	}
	return out, nil
}

func (n *Node) contacts(ctx context.Context, r *http.Request, c *caller) (any, error) {
	names, err := n.st.Contacts(ctx, c.account.ID)
	if err != nil {
		return nil, err
	}
	out := []api.Contact{}
	for _, name := range names {
		e, err := n.contactEntryFor(ctx, c, name) // federation.go
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func (n *Node) contactAdd(ctx context.Context, r *http.Request, c *caller) (any, error) {
	var req api.ContactAdd
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if ra, remote, err := n.remote(ctx, req.User); err != nil || remote { // federation.go
		if err != nil {
			return nil, err
		}
		return n.remoteContactAdd(ctx, c, ra)
	}
	acct, err := n.parseLocal(req.User)
	if err != nil {
		return nil, err
	}
	if acct == c.id.Account {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "you cannot add yourself as a contact")
	}
	a, err := n.st.Account(ctx, acct.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Status == store.StatusPending) {
		return nil, errorf(http.StatusNotFound, api.CodeUnknownUser, "no account %s on this cluster", acct)
	}
	if err != nil {
		return nil, err
	}
	if err := n.st.AddContact(ctx, c.account.ID, a.Name, n.now()); err != nil {
		return nil, err
	}
	return n.contactEntry(ctx, a.Name)
}

func (n *Node) contactRemove(ctx context.Context, r *http.Request, c *caller) (any, error) {
	acct, err := ident.ParseAccount(r.PathValue("user"))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	if err := n.st.RemoveContact(ctx, c.account.ID, acct.String()); errors.Is(err, store.ErrNotFound) {
		return nil, errorf(http.StatusNotFound, api.CodeNotFound, "%s is not on your contact list", acct)
	} else if err != nil {
		return nil, err
	}
	n.endWatching(c.account.Name, acct.String())
	return map[string]string{"removed": acct.String()}, nil
}

func (n *Node) passwdBegin(ctx context.Context, r *http.Request, c *caller) (any, error) {
	var req api.PasswdBegin
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	devPol, accPol, _ := n.throttles(ctx, c.account.Name)
	if _, err := n.attempt(ctx, "device "+c.id.String(), "", false,
		subject{store.SubjectDevice, c.device.ID, devPol}, subject{store.SubjectAccount, c.account.ID, accPol}); err != nil {
		return nil, err
	}
	ak, err := n.openKey(c.account.Secrets.SealedOPRF, "oprf/account/"+c.account.Name)
	if err != nil {
		return nil, err
	}
	p := &pending{kind: "passwd", accountID: c.account.ID, account: c.account.Name, device: c.id.Name, deviceID: c.device.ID, challenge: make([]byte, 32)}
	rand.Read(p.challenge)
	if p.accountKey, p.deviceKey, err = newKeys(); err != nil {
		return nil, err
	}
	out := api.LoginChallenge{Challenge: p.challenge}
	if out.AccountEval, err = n.evaluate(ak, req.OldAccountBlind); err != nil {
		return nil, err
	}
	if out.NewAccountEval, err = n.evaluate(p.accountKey, req.NewAccountBlind); err != nil {
		return nil, err
	}
	if out.NewDeviceEval, err = n.evaluate(p.deviceKey, req.NewDeviceBlind); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(c.account.Secrets.KDF, &out.KDF); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(c.account.Secrets.Salts, &out.Salts); err != nil {
		return nil, err
	}
	if out.Session, err = n.newSession(p); err != nil {
		return nil, err
	}
	return out, nil
}

func (n *Node) passwdFinish(ctx context.Context, r *http.Request, c *caller) (any, error) {
	var req api.PasswdFinish
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	p, err := n.takeSession(req.Session, "passwd")
	if err != nil {
		return nil, err
	}
	if p.deviceID != c.device.ID {
		return nil, errorf(http.StatusForbidden, api.CodeIdentityMismatch, "password change was started by another device")
	}
	if !ed25519.Verify(c.account.Secrets.AuthPub, api.PasswdMessage(req.Session, p.challenge, c.id.Name), req.Signature) {
		return nil, n.wrongPassword(ctx, c.account.Name, store.SubjectAccount)
	}
	if err := n.checkPasswordMaterial(req.KDF, req.Salts, req.AuthPub); err != nil {
		return nil, err
	}
	sec, err := n.accountSecrets(c.account.Name, p.accountKey, req.KDF, req.Salts, req.AuthPub)
	if err != nil {
		return nil, err
	}
	kb, err := p.deviceKey.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if err := n.st.ChangePassword(ctx, c.account.ID, sec, c.device.ID, n.seal.seal(kb, "oprf/device/"+c.device.Handle)); err != nil {
		return nil, err
	}
	if err := n.resetAttempts(ctx, c.account.ID, c.device.ID); err != nil {
		return nil, err
	}
	n.log.Info("password changed", "device", c.id.String())
	return map[string]string{"status": "ok"}, nil
}
