package zrtp

import "errors"

// ErrAuxTooLate is returned by SetAuxSecret once the exchange has started.
var ErrAuxTooLate = errors.New("zrtp: auxsecret must be set before Start")

// SetAuxSecret sets the auxsecret of §4.3 after New, for callers that learn
// who the peer is only from the signalling that follows the engine's
// creation (our zrtp-hash goes into the SDP offer before the answer names
// the peer). Its ID goes into our DHPart (§5.5) and the secret into s0
// (§4.4.1.4) only when the peer's ID matches; a mismatch is reported in
// Secure.AuxMismatch and is not fatal. It must be called before Start.
func (e *Engine) SetAuxSecret(s []byte) error {
	if e.state != stateIdle {
		return ErrAuxTooLate
	}
	e.cfg.AuxSecret = append([]byte(nil), s...)
	return nil
}
