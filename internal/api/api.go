// Package api is the wire format of the cluster's HTTPS API: JSON requests
// and responses shared by the server and the device, and the stable error
// codes every failure carries.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/phonex/phonex/internal/kdf"
)

// Paths of the API.
const (
	PathEnrollBegin   = "/v1/enroll/begin"
	PathEnrollFinish  = "/v1/enroll/finish"
	PathEnrollConfirm = "/v1/enroll/confirm"
	PathLoginParams   = "/v1/login/params"
	PathLoginBegin    = "/v1/login/begin"
	PathLoginFinish   = "/v1/login/finish"
	PathLoginConfirm  = "/v1/login/confirm"
	PathAbort         = "/v1/abort"
	PathUnlock        = "/v1/unlock"
	PathUnlockConfirm = "/v1/unlock/confirm"
	PathMe            = "/v1/me"
	PathRenew         = "/v1/renew"
	PathDevices       = "/v1/devices"
	PathContacts      = "/v1/contacts"
	PathPasswdBegin   = "/v1/passwd/begin"
	PathPasswdFinish  = "/v1/passwd/finish"
	PathHealth        = "/v1/health"
	PathKeys          = "/v1/keys"
)

// MaxBody bounds every request body the server reads.
const MaxBody = 64 << 10

// Error codes. Clients branch on the code, never on the message.
const (
	CodeBadRequest       = "bad_request"
	CodeUnknownUser      = "unknown_user"
	CodeNotEnrolled      = "not_enrolled" // the account has an activation code but no device yet
	CodeHumanCheck       = "human_check_required"
	CodeBusy             = "busy" // too many exchanges in progress; retry later
	CodeUnknownDevice    = "unknown_device"
	CodeCodeInvalid      = "code_invalid"
	CodeCodeExpired      = "code_expired"
	CodeCodeUsed         = "code_used"
	CodeCodeBusy         = "code_busy"
	CodeThrottled        = "throttled"
	CodeLocked           = "locked"
	CodeWrongPassword    = "wrong_password"
	CodeAccountDisabled  = "account_disabled"
	CodeDeviceRevoked    = "device_revoked"
	CodeDeviceExists     = "device_exists"
	CodeCertRequired     = "cert_required"
	CodeCertUnknownCA    = "cert_unknown_ca"
	CodeCertExpired      = "cert_expired"
	CodeCertUnknown      = "cert_unknown"
	CodeCertSuperseded   = "cert_superseded"
	CodeIdentityMismatch = "identity_mismatch"
	CodeSessionExpired   = "session_expired"
	CodeNotFound         = "not_found"
	CodeFederation       = "federation_unsupported"
	CodeNotAllowed       = "not_allowed"
	CodeInternal         = "internal"
)

// Error is the body of every non-2xx response.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// RetryAfter is set with CodeThrottled: seconds to wait.
	RetryAfter float64 `json:"retry_after_seconds,omitempty"`
	// Remaining is the number of attempts left before lock-out, where known.
	Remaining *int `json:"attempts_remaining,omitempty"`
	// Challenge is set with CodeHumanCheck: the puzzle to solve and send
	// back with the retried request.
	Challenge *Challenge `json:"challenge,omitempty"`
	Status    int        `json:"-"`
}

// Challenge is a proof-of-work puzzle (see package pow).
type Challenge struct {
	Token []byte `json:"token"`
	Bits  int    `json:"bits"`
}

// Solution answers a Challenge.
type Solution struct {
	Token   []byte `json:"token"`
	Counter uint64 `json:"counter"`
}

// Confirm ends an enrollment or login (POST PathAbort with it gives up one,
// releasing the activation code at once): sent over mutual TLS with the new
// certificate once the device has verified it and saved its profile, it
// activates the device (and, at enrollment, consumes the code).
type Confirm struct {
	Session string `json:"session"`
}

func (e *Error) Error() string { return e.Message }

// Is lets errors.Is match on the code: errors.Is(err, &api.Error{Code: api.CodeLocked}).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Wait is the RetryAfter as a duration.
func (e *Error) Wait() time.Duration { return time.Duration(e.RetryAfter * float64(time.Second)) }

// ErrorBody wraps Error on the wire.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Decode reads one JSON value of at most MaxBody bytes, refusing unknown
// fields and trailing data.
func Decode(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, MaxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	if dec.More() {
		return fmt.Errorf("decode %T: trailing data", v)
	}
	return nil
}

// EnrollBegin starts the first enrollment of an account with its activation code.
type EnrollBegin struct {
	User         string `json:"user"`
	Code         string `json:"code"`
	Device       string `json:"device"`
	AccountBlind []byte `json:"account_blind"`
	DeviceBlind  []byte `json:"device_blind"`
}

// OPRFEvals answers the blinded elements of a begin request. Session names
// the exchange in the finish and confirm requests.
type OPRFEvals struct {
	Session     string `json:"session"`
	AccountEval []byte `json:"account_eval,omitempty"`
	DeviceEval  []byte `json:"device_eval,omitempty"`
}

// EnrollFinish completes an enrollment.
type EnrollFinish struct {
	Session string     `json:"session"`
	CSR     []byte     `json:"csr"`
	KexPub  []byte     `json:"kex_pub,omitempty"`
	KexSig  []byte     `json:"kex_sig,omitempty"`
	AuthPub []byte     `json:"auth_pub"`
	KDF     kdf.Params `json:"kdf"`
	Salts   kdf.Salts  `json:"salts"`
}

// Certs is what a device receives when it is enrolled or renewed.
type Certs struct {
	Device  string `json:"device"`
	Handle  string `json:"handle"`
	Cert    []byte `json:"cert"`
	KexCert []byte `json:"kex_cert,omitempty"`
	CACert  []byte `json:"ca_cert"`
}

// LoginBegin starts the enrollment of a further device with the password.
type LoginBegin struct {
	User         string `json:"user"`
	Device       string `json:"device"`
	AccountBlind []byte `json:"account_blind"`
	DeviceBlind  []byte `json:"device_blind"`
	// Proof is the solved human check, once the server asked for one.
	Proof *Solution `json:"proof,omitempty"`
}

// LoginParams asks for an account's public password parameters.
type LoginParams struct {
	User string `json:"user"`
}

// PasswordParams are an account's KDF parameters and salts. They are not
// secret: without the server's OPRF key they let nobody test a guess.
type PasswordParams struct {
	KDF   kdf.Params `json:"kdf"`
	Salts kdf.Salts  `json:"salts"`
}

// LoginChallenge answers LoginBegin and PasswdBegin.
type LoginChallenge struct {
	OPRFEvals
	Challenge []byte     `json:"challenge"`
	KDF       kdf.Params `json:"kdf"`
	Salts     kdf.Salts  `json:"salts"`
	// For PasswdBegin: evaluations of the new password's blinded elements.
	NewAccountEval []byte `json:"new_account_eval,omitempty"`
	NewDeviceEval  []byte `json:"new_device_eval,omitempty"`
}

// LoginFinish proves the password and asks for the new device's certificate.
type LoginFinish struct {
	Session   string `json:"session"`
	Signature []byte `json:"signature"`
	CSR       []byte `json:"csr"`
	KexPub    []byte `json:"kex_pub,omitempty"`
	KexSig    []byte `json:"kex_sig,omitempty"`
}

// Unlock asks for the OPRF evaluation that opens a device's profile.
type Unlock struct {
	Handle string `json:"handle"`
	Blind  []byte `json:"blind"`
}

// UnlockResult carries the evaluation and where the counters stand.
type UnlockResult struct {
	Eval      []byte `json:"eval"`
	FreeLeft  int    `json:"free_attempts_left"`
	Remaining int    `json:"attempts_remaining"`
}

// Me describes the calling device.
type Me struct {
	Device   string    `json:"device"`
	Suite    string    `json:"suite"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	// SIP is the cluster's SIP over TLS address (host:port).
	SIP string `json:"sip"`
	// The account's password parameters, for a password change.
	KDF   kdf.Params `json:"kdf"`
	Salts kdf.Salts  `json:"salts"`
}

// Renew asks for a fresh certificate for the same keys.
type Renew struct {
	CSR    []byte `json:"csr"`
	KexPub []byte `json:"kex_pub,omitempty"`
	KexSig []byte `json:"kex_sig,omitempty"`
}

// Device is one device of an account.
type Device struct {
	Name     string    `json:"name"`
	Suite    string    `json:"suite"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Status   string    `json:"status"`
	Created  time.Time `json:"created"`
	Current  bool      `json:"current,omitempty"`
}

// Contact is one contact-list entry with the contact's device certificates.
type Contact struct {
	User    string          `json:"user"`
	Devices []ContactDevice `json:"devices"`
	// CA is, for a contact of another cluster, that cluster's CA (DER) as
	// this cluster pinned it; the devices' certificates chain to it.
	CA []byte `json:"ca,omitempty"`
}

// ContactDevice is a contact's device and its certificates (DER).
type ContactDevice struct {
	Name    string `json:"name"`
	Cert    []byte `json:"cert"`
	KexCert []byte `json:"kex_cert,omitempty"`
}

// ContactAdd adds a contact.
type ContactAdd struct {
	User string `json:"user"`
}

// PasswdBegin starts a password change from an unlocked device.
type PasswdBegin struct {
	OldAccountBlind []byte `json:"old_account_blind"`
	NewAccountBlind []byte `json:"new_account_blind"`
	NewDeviceBlind  []byte `json:"new_device_blind"`
}

// PasswdFinish proves the old password and installs the new material.
type PasswdFinish struct {
	Session   string     `json:"session"`
	Signature []byte     `json:"signature"`
	AuthPub   []byte     `json:"auth_pub"`
	KDF       kdf.Params `json:"kdf"`
	Salts     kdf.Salts  `json:"salts"`
}

// LoginMessage is what the password-derived key signs to log in.
func LoginMessage(session string, challenge []byte, device string) []byte {
	return append([]byte("phonex/v1/login\x00"+session+"\x00"+device+"\x00"), challenge...)
}

// PasswdMessage is what the old password-derived key signs to change it.
func PasswdMessage(session string, challenge []byte, device string) []byte {
	return append([]byte("phonex/v1/passwd\x00"+session+"\x00"+device+"\x00"), challenge...)
}

// Prekey is one published key: an opaque encoding made by the device (the
// ratchet's prekeys, the long-term message KEM key) and, where the key is
// signed, the device's signature. The server does not interpret them.
type Prekey struct {
	ID   int64  `json:"id"`
	Data []byte `json:"data"`
	Sig  []byte `json:"sig,omitempty"`
}

// Prekeys is what a device publishes (PUT /v1/keys). Absent parts are left
// as they are on the server; one-time keys are added.
type Prekeys struct {
	Capabilities []string `json:"capabilities,omitempty"`
	KEM          *Prekey  `json:"kem,omitempty"`
	Signed       *Prekey  `json:"signed,omitempty"`
	OneTime      []Prekey `json:"one_time,omitempty"`
	PQSigned     *Prekey  `json:"pq_signed,omitempty"`
	PQOneTime    []Prekey `json:"pq_one_time,omitempty"`
	// Record is the device's signed statement of its capabilities and
	// current signed prekeys (amp.CapabilityRecord), signed with the
	// device's certified key; the server stores and hands it out as is.
	Record *Prekey `json:"record,omitempty"`
}

// PrekeyCount is how many unused one-time keys of the device remain.
type PrekeyCount struct {
	OneTime   int `json:"one_time"`
	PQOneTime int `json:"pq_one_time"`
	// Signed and PQSigned are the ids of the signed prekeys the cluster
	// holds (0: none), so the device republishes what is missing.
	Signed   int64 `json:"signed"`
	PQSigned int64 `json:"pq_signed"`
}

// Bundle is one device's keys as handed to a contact (GET /v1/keys/USER).
// Each one-time key in it was removed from the server for this answer.
type Bundle struct {
	Device       string   `json:"device"`
	Cert         []byte   `json:"cert"`
	KexCert      []byte   `json:"kex_cert,omitempty"`
	Capabilities []string `json:"capabilities"`
	KEM          *Prekey  `json:"kem,omitempty"`
	Signed       *Prekey  `json:"signed,omitempty"`
	OneTime      *Prekey  `json:"one_time,omitempty"`
	PQSigned     *Prekey  `json:"pq_signed,omitempty"`
	PQOneTime    *Prekey  `json:"pq_one_time,omitempty"`
	Record       *Prekey  `json:"record,omitempty"`
	// CA is, for a device of another cluster, that cluster's CA (DER) as
	// this cluster pinned it.
	CA []byte `json:"ca,omitempty"`
}

// Limits of published keys.
const (
	MaxPrekeyData    = 4096
	MaxPrekeysPerPut = 200
	// MaxStoredPrekeys caps the one-time keys of one kind the cluster keeps
	// for a device.
	MaxStoredPrekeys = 400
)
