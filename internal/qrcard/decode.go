package qrcard

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // cards photographed or scanned
	_ "image/png"
	"io"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// MaxPixels bounds a picture DecodeImage reads, checked from its header
// before the pixels are decoded; MaxFileSize bounds the file.
const (
	MaxPixels   = 40 << 20
	MaxFileSize = 32 << 20
)

// DecodeImage reads a PNG or JPEG picture of a card and parses the QR code
// in it.
func DecodeImage(r io.Reader) (Card, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return Card{}, fmt.Errorf("read picture: %w", err)
	}
	if len(data) > MaxFileSize {
		return Card{}, fmt.Errorf("picture larger than %d bytes", MaxFileSize)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return Card{}, fmt.Errorf("read picture (PNG or JPEG): %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return Card{}, fmt.Errorf("picture of %dx%d pixels: too large", cfg.Width, cfg.Height)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return Card{}, fmt.Errorf("read picture: %w", err)
	}
	return Decode(img)
}

// Decode finds the QR code in img and parses it as a card.
func Decode(img image.Image) (Card, error) {
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return Card{}, fmt.Errorf("%w: %v", ErrNoCode, err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		var nf gozxing.NotFoundException
		if errors.As(err, &nf) {
			return Card{}, ErrNoCode
		}
		return Card{}, fmt.Errorf("%w: %v", ErrNoCode, err)
	}
	return Parse(res.GetText())
}
