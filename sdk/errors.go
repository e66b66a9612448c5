package sdk

import (
	"errors"

	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/sipua"
)

// Errors a caller branches on with errors.Is. They are the values the device
// code returns, so errors.Is works through every layer of wrapping.
var (
	// ErrNoProfile: the directory holds no profile; enroll or log in first.
	ErrNoProfile = client.ErrNoProfile
	// ErrProfileExists: Enroll or Login into a directory that has a profile.
	ErrProfileExists = client.ErrProfileExists
	// ErrWrongPassword: the password does not open the profile. The error
	// is a *WrongPasswordError telling how many attempts are left before
	// the cluster locks the device.
	ErrWrongPassword = client.ErrWrongPassword
	// ErrTampered: a profile file is damaged or was changed.
	ErrTampered = client.ErrTampered
	// ErrUnreachable: the home cluster cannot be reached. Opening a profile
	// needs it: that is what makes offline password guessing impossible.
	ErrUnreachable = client.ErrUnreachable
	// ErrCAMismatch: the cluster's CA is not the one the caller pinned.
	ErrCAMismatch = client.ErrCAMismatch
	// ErrNoPassword: an empty password.
	ErrNoPassword = client.ErrNoPassword
	// ErrPasswordFormat: a new password is too short.
	ErrPasswordFormat = client.ErrPasswordFormat
	// ErrNotCA: the pinned certificate (EnrollConfig.CAFile) is not a CA
	// certificate, typically the server's own certificate.
	ErrNotCA = client.ErrNotCA
	// ErrNotEnrolled: Login to an account whose first device has not
	// enrolled yet; enroll with the activation code instead.
	ErrNotEnrolled = client.ErrNotEnrolled
	// ErrWeakKDF: the cluster asked for a password KDF cost below
	// Options.MinKDF; the device refused.
	ErrWeakKDF = client.ErrWeakKDF
	// ErrNotAllowed: the recipient has not added the sender to their
	// contacts; the cluster stored nothing.
	ErrNotAllowed = client.ErrNotAllowed
	// ErrNotListed: the sender has not added the recipient to its own
	// contacts, so the recipient could not verify the sender's keys.
	ErrNotListed = client.ErrNotListed
	// ErrTooLarge: the text cannot pass the cluster in one message; it
	// was not queued.
	ErrTooLarge = client.ErrTooLarge
	// ErrNoSecureDevice: the recipient has no device that can receive an
	// encrypted message (only standard SIP phones, or none enrolled yet);
	// SendOptions.Insecure reaches phones in plain text.
	ErrNoSecureDevice = client.ErrNoSecureDevice
	// ErrListening: another process is already listening with this
	// profile; a second listener would take its messages.
	ErrListening = client.ErrListening

	// ErrNoZRTP: the called peer does not speak ZRTP and
	// CallOptions.AllowInsecure is false.
	ErrNoZRTP = sipua.ErrNoZRTP
	// ErrZRTPFailed: the ZRTP exchange ended without keys.
	ErrZRTPFailed = sipua.ErrZRTPFailed
	// ErrEqualZID: both ends have the same ZRTP identity, so they share one
	// store; give each its own.
	ErrEqualZID = sipua.ErrEqualZID
	// Why a call was not answered.
	ErrBusy            = sipua.ErrBusy
	ErrDeclined        = sipua.ErrDeclined
	ErrNoAnswer        = sipua.ErrNoAnswer
	ErrPeerUnreachable = sipua.ErrUnreachable
	// ErrRelayUnavailable: CallOptions.Relay was set and no relayed
	// path could be had (no TURN server, refused credentials, or a peer
	// without ICE).
	ErrRelayUnavailable = sipua.ErrRelayUnavailable
	// ErrNoCallRemembered: ConfirmLastCall names a peer with no call in
	// the store.
	ErrNoCallRemembered = sipua.ErrNoCallRemembered
	// ErrSASMismatch: ConfirmLastCall was given words other than the SAS
	// the call showed; nothing changed.
	ErrSASMismatch = sipua.ErrSASMismatch
	// ErrAlgorithm: an unknown ZRTP algorithm name in CallOptions.
	ErrAlgorithm = errors.New("unknown ZRTP algorithm")
)

// WrongPasswordError is the error behind ErrWrongPassword; FreeLeft is the
// number of attempts left before the cluster starts delaying them, Remaining
// the number before it locks the device until an operator unlocks it.
type WrongPasswordError = client.WrongPasswordError
