package codec

import (
	"errors"
	"testing"

	"github.com/phonex/phonex/internal/testpeer"
)

// requireOpus skips the test when libopus is unavailable to this build, and
// fails it when CI is set.
func requireOpus(t testing.TB) {
	t.Helper()
	o, err := NewOpus(OpusConfig{})
	if errors.Is(err, ErrOpusUnavailable) {
		testpeer.Missing(t, "libopus", err.Error())
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
}
