package files

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"

	"github.com/phonex/phonex/internal/api"
)

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"123456789012345678", 123456789012345678, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {"01", 0, false}, {" 1", 0, false},
		{"1 ", 0, false}, {"1e3", 0, false}, {"0x10", 0, false}, {"1234567890123456789", 0, false},
	} {
		got, err := parseOffset(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseOffset(%q) = %d, %v", tc.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadOffset) {
			t.Errorf("parseOffset(%q): %v is not ErrBadOffset", tc.in, err)
		}
	}
}

func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"0", "100000", "-1", "01", "999999999999999999", "9223372036854775807", "", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseOffset(s)
		if err != nil {
			return
		}
		if n < 0 || strconv.FormatInt(n, 10) != s {
			t.Fatalf("parseOffset(%q) = %d: not the canonical form", s, n)
		}
	})
}

func TestParseSlotID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"00112233445566778899aabbccddeeff", true},
		{"00112233445566778899AABBCCDDEEFF", false}, {"00112233445566778899aabbccddeef", false},
		{"00112233445566778899aabbccddeeff00", false}, {"0011223344556677889 aabbccddeeff", false}, {"", false},
	} {
		id, err := parseSlotID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseSlotID(%q): %v", tc.in, err)
		}
		if err == nil && hex.EncodeToString(id[:]) != tc.in {
			t.Errorf("parseSlotID(%q) = %x", tc.in, id)
		}
		if err != nil && !errors.Is(err, ErrBadSlot) {
			t.Errorf("parseSlotID(%q): %v is not ErrBadSlot", tc.in, err)
		}
	}
}

// FuzzSlotsPut decodes and checks a slot upload body as the handler does.
func FuzzSlotsPut(f *testing.F) {
	h := b64(bytes.Repeat([]byte{1}, 32))
	id := "00112233445566778899aabbccddeeff"
	for _, s := range []string{
		`{"contact":"alpha@example.org","slots":[{"id":"` + id + `","sealed":"AQID","proof_hash":"` + h + `","nonce2":"` + h + `"}]}`,
		`{"contact":"alpha@example.org","slots":[]}`,
		`{"contact":"a","slots":[{"id":"s 0","sealed":"","proof_hash":"","nonce2":""}]}`,
		`{"contact":"alpha@example.org","slots":[{"id":"` + id + `","sealed":"AQID","proof_hash":"AQ==","nonce2":"AQ=="},{"id":"` + id + `"}]}`,
		`{"x":1}`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var p api.FileSlotsPut
		if err := api.Decode(bytes.NewReader(body), &p); err != nil {
			return
		}
		if err := checkSlots(&p); err != nil {
			if !errors.Is(err, ErrBadSlot) {
				t.Fatalf("error %v is not ErrBadSlot", err)
			}
			return
		}
		for _, s := range p.Slots {
			if len(s.ProofHash) != 32 || len(s.Nonce2) != api.Nonce2Size || len(s.Sealed) == 0 || len(s.Sealed) > api.MaxSlotSealed || checkSlotID(s.ID) != nil {
				t.Fatalf("accepted a bad slot %+v", s)
			}
		}
	})
}

// FuzzFileCreate decodes and checks an upload's creation body.
func FuzzFileCreate(f *testing.F) {
	n2 := b64(bytes.Repeat([]byte{2}, 32))
	for _, s := range []string{
		`{"recipient":"bravo@example.org","size":10,"header":"aGVhZGVy","slots":[{"device":"bravo@example.org/b1","slot_id":"00112233445566778899aabbccddeeff","nonce2":"` + n2 + `"}]}`,
		`{"recipient":"bravo@example.org","size":-1,"header":"aA=="}`,
		`{"recipient":"bravo@example.org","size":10,"header":""}`,
		`{"recipient":"b","size":10,"header":"aA==","slots":[{"device":"d","slot_id":"s0","nonce2":"AQ=="}]}`,
		`{"size":1e30}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var c api.FileCreate
		if err := api.Decode(bytes.NewReader(body), &c); err != nil {
			return
		}
		if err := checkCreate(&c); err != nil {
			if !errors.Is(err, ErrBadFile) && !errors.Is(err, ErrBadSlot) {
				t.Fatalf("error %v is neither ErrBadFile nor ErrBadSlot", err)
			}
			return
		}
		if c.Size < 1 || len(c.Header) == 0 || len(c.Header) > api.MaxFileHeader {
			t.Fatalf("accepted %+v", c)
		}
	})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
