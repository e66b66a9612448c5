package main

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/phonex/phonex/internal/server"
)

// printCard prints the enrollment card of a new account on the terminal
// (qr) and writes it as a PNG (pngPath, mode 0600: the code is a secret).
// With neither it does nothing.
func printCard(w io.Writer, adm *server.Admin, act server.Activation, qr bool, pngPath string, jsonOut bool) (string, error) {
	if !qr && pngPath == "" {
		return "", nil
	}
	c, err := adm.EnrollmentCard(act)
	if err != nil {
		return "", err
	}
	if pngPath != "" {
		var b bytes.Buffer
		if err := c.PNG(&b); err != nil {
			return "", err
		}
		if err := os.WriteFile(pngPath, b.Bytes(), 0o600); err != nil {
			return "", fmt.Errorf("write the card: %w", err)
		}
	}
	if qr && !jsonOut {
		t, err := c.Terminal()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(w, "\nenrollment card (phonex enroll --qr-image or --qr-text reads it):\n%s", t)
	}
	if pngPath != "" && !jsonOut {
		fmt.Fprintf(w, "card written to %s (keep it as secret as the code)\n", pngPath)
	}
	return c.URI(), nil
}
