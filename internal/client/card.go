package client

import (
	"fmt"
	"io"

	"github.com/phonex/phonex/internal/qrcard"
)

// ReadCard parses an enrollment card's text (phonex://enroll?...).
func ReadCard(text string) (qrcard.Card, error) {
	c, err := qrcard.Parse(text)
	if err != nil {
		return c, fmt.Errorf("read enrollment card: %w", err)
	}
	return c, nil
}

// ReadCardImage decodes the QR code of an enrollment card from a PNG or
// JPEG picture.
func ReadCardImage(r io.Reader) (qrcard.Card, error) {
	c, err := qrcard.DecodeImage(r)
	if err != nil {
		return c, fmt.Errorf("read enrollment card: %w", err)
	}
	return c, nil
}
