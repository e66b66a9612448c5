package siplimit

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

// The limit follows the SIP stack's: if a new sipgo lowers its cap, bodies
// at our limit would again be dropped with the connection.
func TestMatchesSIPStack(t *testing.T) {
	if sip.ParseMaxMessageLength != MaxMessage {
		t.Fatalf("sipgo reads at most %d bytes, MaxMessage is %d", sip.ParseMaxMessageLength, MaxMessage)
	}
}
