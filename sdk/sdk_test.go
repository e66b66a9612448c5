package sdk_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phonex/phonex/sdk"
)

// TestEnrollPinsCA: enrollment against a CA other than the pinned one fails
// with ErrCAMismatch and leaves no profile behind.
func TestEnrollPinsCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p")
	_, err := sdk.Enroll(context.Background(), sdk.EnrollConfig{Dir: dir, User: "hotel@example.org", Server: nodeAddr,
		CAFingerprint: strings.Repeat("ab", 32), Code: activationCode("hotel@example.org"), Password: []byte("hotel password")},
		&sdk.Options{KDF: fastKDF})
	if !errors.Is(err, sdk.ErrCAMismatch) {
		t.Fatalf("enroll with a wrong CA fingerprint: %v, want ErrCAMismatch", err)
	}
	if sdk.Exists(dir) {
		t.Error("a profile was left behind")
	}
}

// TestOpenErrors: the sentinel errors of Open.
func TestOpenErrors(t *testing.T) {
	if _, err := sdk.Open(context.Background(), t.TempDir(), []byte("whatever pw"), nil); !errors.Is(err, sdk.ErrNoProfile) {
		t.Errorf("Open of an empty directory: %v, want ErrNoProfile", err)
	}
}
