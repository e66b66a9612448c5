package qrcard

import (
	"bytes"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Notice is printed with every rendering of a card.
const Notice = "This card holds a secret activation code: whoever has it can enroll the account. Give it only to its owner, and destroy it once used."

// quiet is the quiet zone around the symbol, in modules (ISO/IEC 18004
// §6.3.8 asks for 4).
const quiet = 4

// Matrix is the QR symbol of the card's URI with its quiet zone: true is a
// dark module.
//
// The encoder picks the data mask with the lowest penalty (ISO/IEC 18004
// §7.8.3). For about 2 % of cards that mask leaves a finder-like run in
// the data which the common single-symbol reader (ZXing's, and so many
// phone scanners) confirms in place of the bottom-left finder pattern,
// and it cannot read a perfect picture of the symbol. Such a card is
// drawn with the first other mask that the reader does read; every mask
// is a valid symbol.
func (c Card) Matrix() ([][]bool, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	uri := c.URI()
	m, err := encode(uri, -1)
	if err != nil {
		return nil, err
	}
	if singleReaderReads(m, uri) {
		return m, nil
	}
	for mask := 0; mask < 8; mask++ {
		alt, err := encode(uri, mask)
		if err == nil && singleReaderReads(alt, uri) {
			return alt, nil
		}
	}
	// No mask suits that reader: Decode's fallback still reads m.
	return m, nil
}

// encode is the QR symbol of text with data mask mask (-1: the encoder's
// choice).
func encode(text string, mask int) ([][]bool, error) {
	hints := map[gozxing.EncodeHintType]any{
		gozxing.EncodeHintType_ERROR_CORRECTION: decoder.ErrorCorrectionLevel_M,
		gozxing.EncodeHintType_MARGIN:           quiet,
	}
	if mask >= 0 {
		hints[gozxing.EncodeHintType_QR_MASK_PATTERN] = mask
	}
	// Width and height 0: one pixel per module.
	bm, err := qrcode.NewQRCodeWriter().Encode(text, gozxing.BarcodeFormat_QR_CODE, 0, 0, hints)
	if err != nil {
		return nil, fmt.Errorf("qr encode: %w", err)
	}
	m := make([][]bool, bm.GetHeight())
	for y := range m {
		m[y] = make([]bool, bm.GetWidth())
		for x := range m[y] {
			m[y][x] = bm.Get(x, y)
		}
	}
	return m, nil
}

// singleReaderReads reports whether the single-symbol reader finds text
// in a picture of m.
func singleReaderReads(m [][]bool, text string) bool {
	bmp, err := gozxing.NewBinaryBitmapFromImage(matrixImage(m, 4))
	if err != nil {
		return false
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	return err == nil && res.GetText() == text
}

// Image is the card's QR symbol, scale pixels per module, black on white.
func (c Card) Image(scale int) (*image.Gray, error) {
	m, err := c.Matrix()
	if err != nil {
		return nil, err
	}
	return matrixImage(m, max(scale, 1)), nil
}

func matrixImage(m [][]bool, scale int) *image.Gray {
	n := len(m)
	img := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	for y := 0; y < n*scale; y++ {
		for x := 0; x < n*scale; x++ {
			v := uint8(255)
			if m[y/scale][x/scale] {
				v = 0
			}
			img.SetGray(x, y, color.Gray{Y: v})
		}
	}
	return img
}

// PNG writes the card as a PNG: the QR symbol, 8 pixels per module, and
// below it the account, the server and the notice that the code is
// secret.
func (c Card) PNG(w io.Writer) error {
	sym, err := c.Image(8)
	if err != nil {
		return err
	}
	lines := []string{"PhoneX enrollment card: " + c.User, "server " + c.Server,
		"SECRET: this card holds an activation code.", "Give it only to its owner; destroy it once used."}
	face := basicfont.Face7x13
	const lineH, pad = 16, 8
	width := sym.Bounds().Dx()
	for _, l := range lines {
		width = max(width, len(l)*face.Advance+2*pad)
	}
	img := image.NewGray(image.Rect(0, 0, width, sym.Bounds().Dy()+len(lines)*lineH+pad))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(img, sym.Bounds().Add(image.Pt((width-sym.Bounds().Dx())/2, 0)), sym, image.Point{}, draw.Src)
	d := font.Drawer{Dst: img, Src: image.Black, Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(pad, sym.Bounds().Dy()+(i+1)*lineH-4)
		d.DrawString(l)
	}
	return png.Encode(w, img)
}

// SVG is the card as an SVG image: the symbol, the account and server,
// and the notice that the code is secret. It holds no script and no
// external reference, so the panel can serve it under a strict
// Content-Security-Policy.
func (c Card) SVG() ([]byte, error) {
	m, err := c.Matrix()
	if err != nil {
		return nil, err
	}
	const mod = 6
	n := len(m)
	size := n * mod
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="PhoneX enrollment card for %s">`,
		size, size+64, size, size+64, html.EscapeString(c.User))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, size, size+64)
	for y := range m {
		for x := 0; x < n; x++ {
			if !m[y][x] {
				continue
			}
			run := 1
			for x+run < n && m[y][x+run] {
				run++
			}
			fmt.Fprintf(&b, "M%d %dh%dv%dh-%dz", x*mod, y*mod, run*mod, mod, run*mod)
			x += run - 1
		}
	}
	b.WriteString(`"/>`)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="12" text-anchor="middle">%s at %s</text>`,
		size/2, size+16, html.EscapeString(c.User), html.EscapeString(c.Server))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="10" text-anchor="middle">Secret activation code: give it only to its owner.</text>`,
		size/2, size+36)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="10" text-anchor="middle">Expires once used.</text></svg>`,
		size/2, size+52)
	return b.Bytes(), nil
}

// Terminal renders the symbol with Unicode half blocks, two module rows
// per line, light modules drawn (as qrencode's UTF8 output does), for a
// terminal with a dark background; the notice follows.
func (c Card) Terminal() (string, error) {
	m, err := c.Matrix()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	n := len(m)
	for y := 0; y < n; y += 2 {
		for x := 0; x < n; x++ {
			top := !m[y][x]
			bottom := y+1 < n && !m[y+1][x]
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString(Notice + "\n")
	return b.String(), nil
}
