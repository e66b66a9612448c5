package amp

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	"github.com/phonex/phonex/internal/wire"
)

// MaxTextSize bounds a text message after decompression, so a gzip bomb
// fails with ErrTooLarge instead of exhausting memory.
const MaxTextSize = 256 << 10

// Text is an instant message. Version 1 is the plain UTF-8 text; version 2
// is AMPSimple (draft §2.7): message = GZIP(text) and a nonce identifying
// the message for receipts.
type Text struct {
	Version int32 // 1 or 2
	Body    string
	Nonce   int32 // version 2 only
}

// Kind implements Message.
func (t *Text) Kind() Kind { return Kind{TypeText, t.Version} }

// Marshal implements Message.
func (t *Text) Marshal() ([]byte, error) {
	if !utf8.ValidString(t.Body) {
		return nil, fmt.Errorf("marshal text: body is not UTF-8")
	}
	if len(t.Body) > MaxTextSize {
		return nil, fmt.Errorf("marshal text: %d bytes: %w", len(t.Body), ErrTooLarge)
	}
	switch t.Version {
	case 1:
		return []byte(t.Body), nil
	case 2:
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := io.WriteString(zw, t.Body); err != nil {
			return nil, fmt.Errorf("marshal text: gzip: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("marshal text: gzip: %w", err)
		}
		b, err := proto.Marshal(&wire.AMPSimple{Message: buf.Bytes(), Nonce: proto.Int32(t.Nonce)})
		if err != nil {
			return nil, fmt.Errorf("marshal text: %w", err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("marshal text version %d: %w", t.Version, ErrUnknownType)
}

func decodeTextV1(b []byte) (Message, error) {
	if len(b) > MaxTextSize {
		return nil, fmt.Errorf("text: %d bytes: %w", len(b), ErrTooLarge)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("text is not UTF-8: %w", ErrMalformed)
	}
	return &Text{Version: 1, Body: string(b)}, nil
}

func decodeTextV2(b []byte) (Message, error) {
	var m wire.AMPSimple
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("AMPSimple: %v: %w", err, ErrMalformed)
	}
	if m.Message == nil || m.Nonce == nil {
		return nil, fmt.Errorf("AMPSimple: message or nonce missing: %w", ErrMalformed)
	}
	body, err := gunzip(m.Message, MaxTextSize)
	if err != nil {
		return nil, fmt.Errorf("AMPSimple: %w", err)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("AMPSimple: text is not UTF-8: %w", ErrMalformed)
	}
	return &Text{Version: 2, Body: string(body), Nonce: m.GetNonce()}, nil
}

// gunzip inflates b, refusing more than limit bytes of output.
func gunzip(b []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %v: %w", err, ErrMalformed)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %v: %w", err, ErrMalformed)
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("gzip: more than %d bytes: %w", limit, ErrTooLarge)
	}
	return out, nil
}
