package sdk

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/phonex/phonex/internal/client"
	"github.com/phonex/phonex/internal/qrcard"
)

// ErrNotCard: the text or picture holds no PhoneX enrollment card (or a
// damaged one; the error names the field).
var ErrNotCard = qrcard.ErrNotCard

// ErrNoQRCode: no QR code was found in the picture.
var ErrNoQRCode = qrcard.ErrNoCode

// EnrollmentCard is what an operator's QR card carries: the account, the
// cluster's API address, the SHA-256 fingerprint of its CA and the
// one-time activation code. The code is a secret until it is used.
type EnrollmentCard struct {
	User          string
	Server        string
	CAFingerprint string
	Code          string
}

// ParseEnrollmentCard reads a card's text, phonex://enroll?... (see
// docs/operator.md).
func ParseEnrollmentCard(text string) (EnrollmentCard, error) {
	c, err := client.ReadCard(text)
	return fromCard(c), err
}

// ReadEnrollmentCardImage reads a card from a PNG or JPEG picture of its
// QR code.
func ReadEnrollmentCardImage(r io.Reader) (EnrollmentCard, error) {
	c, err := client.ReadCardImage(r)
	return fromCard(c), err
}

// ReadEnrollmentCardFile reads a card from a PNG or JPEG file.
func ReadEnrollmentCardFile(path string) (EnrollmentCard, error) {
	f, err := os.Open(path)
	if err != nil {
		return EnrollmentCard{}, fmt.Errorf("read enrollment card: %w", err)
	}
	defer f.Close()
	return ReadEnrollmentCardImage(f)
}

func fromCard(c qrcard.Card) EnrollmentCard {
	return EnrollmentCard{User: c.User, Server: c.Server, CAFingerprint: c.CA, Code: c.Code}
}

// Apply fills cfg's User, Server, CAFingerprint and Code from the card,
// so Enroll pins the CA the card names and refuses a server with another
// (ErrCAMismatch). A User already set must be the card's.
func (c EnrollmentCard) Apply(cfg *EnrollConfig) error {
	if cfg.User != "" && cfg.User != c.User {
		return fmt.Errorf("the card is for %s, not %s", c.User, cfg.User)
	}
	if cfg.CAFile != "" {
		return errors.New("the card pins the CA by its fingerprint; give no CA file with it")
	}
	cfg.User, cfg.Server, cfg.CAFingerprint, cfg.Code = c.User, c.Server, c.CAFingerprint, c.Code
	return nil
}
