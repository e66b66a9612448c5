package e2e

import (
	"os"
	"testing"
	"time"
)

// talk lets a call carry audio for d once both ends report it secure, then
// hangs it up from the caller (Ctrl-C). What each end records so does not
// depend on how long the call took to connect and to agree its keys, as it
// would with a fixed --for counted from the answer: on a loaded machine a
// call through the node and its relay can spend most of a few seconds on
// that. The ends are started without --for (the callee ends with the
// caller's BYE).
func talk(t *testing.T, caller, callee *proc, d time.Duration) {
	t.Helper()
	callee.waitEvent(t, "secure", 60*time.Second)
	hangUpAfter(t, caller, d)
}

// hangUpAfter is talk for a call with a third-party peer (linphonec):
// once p reports the call secure it carries audio for d, then p hangs up,
// whichever end it is.
func hangUpAfter(t *testing.T, p *proc, d time.Duration) {
	t.Helper()
	p.waitEvent(t, "secure", 60*time.Second)
	time.Sleep(d)
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("hang up: %v", err)
	}
}
