package e164

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"+420123456789", "+420123456789", nil},
		{" +1 (555) 010-0199 ", "+15550100199", nil},
		{"+44.20.7946.0000", "+442079460000", nil},
		{"+12345678", "+12345678", nil},
		{"+123456789012345", "+123456789012345", nil},
		{"+1234567", "", ErrLength},
		{"+1234567890123456", "", ErrLength},
		{"420123456789", "", ErrNoPlus},
		{"", "", ErrEmptyInput},
		{"+42012345678a", "", ErrNotDigit},
		{"+4201234567٣9", "", ErrNotDigit},
		{"++420123456789", "", ErrNotDigit},
		{"+0420123456789", "", ErrLeadZero},
		{"+", "", ErrLength},
	} {
		got, err := Parse(tc.in)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestCanonical(t *testing.T) {
	if err := Canonical("+420123456789"); err != nil {
		t.Error(err)
	}
	if err := Canonical("+420 123 456 789"); err == nil {
		t.Error("spaces accepted as canonical")
	}
}

// The hash is SHA-256 over the label and the number: a fixed vector, so a
// client in another language can compute the same.
func TestHashVector(t *testing.T) {
	got := hex.EncodeToString(Hash("+420123456789"))
	// python3: hashlib.sha256(b"phonex/v1/directory-discovery\x00+420123456789")
	const want = "20a43e2381448bd9b7a1716fba6f65e6d1e0f12e071cc8ec75e18bcda51642a6"
	if got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	if bytes.Equal(Hash("+420123456789"), Hash("+420123456788")) || len(Hash("+12345678")) != HashLen {
		t.Error("hashes of two numbers collide or have the wrong size")
	}
}

func TestENUMDomain(t *testing.T) {
	if got := ENUMDomain("+4202", "e164.example."); got != "2.0.2.4.e164.example." {
		t.Errorf("ENUMDomain = %q", got)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"+420123456789", " +1 (555) 010-0199 ", "", "+", "++1", "+0123456789", "+1234567890123456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if err := Canonical(c); err != nil {
			t.Fatalf("Parse(%q) = %q, not canonical: %v", s, c, err)
		}
	})
}
