package files

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/phonex/phonex/internal/api"
)

func validOffer() []byte {
	b, _ := json.Marshal(Offer{OriginID: "abcdefgh234567", FileCreate: api.FileCreate{Recipient: "bravo@b.example", Size: 1000, Header: []byte("hdr"),
		Slots: []api.FileSlotUse{{Device: "bravo@b.example/b1", SlotID: strings.Repeat("ab", 16), Nonce2: bytes.Repeat([]byte{7}, api.Nonce2Size)}}}})
	return b
}

// FuzzParseOffer: a peer's offer either parses into one that obeys the
// rules of form, or fails with ErrBadOffer; never a panic.
func FuzzParseOffer(f *testing.F) {
	f.Add(validOffer())
	f.Add([]byte(`{"origin_id":"../x","recipient":"b@b.example","size":1,"header":"aA==","slots":[]}`))
	f.Add([]byte(`{"origin_id":"abc","size":-1}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOffer(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadOffer) {
				t.Fatalf("error without ErrBadOffer: %v", err)
			}
			return
		}
		if checkID(o.OriginID) != nil || o.Size < 1 || len(o.Slots) == 0 || len(o.Slots) > 64 || len(o.Header) == 0 {
			t.Fatalf("accepted %+v", o)
		}
	})
}

// FuzzParsePeerFileState: a peer's answer about a file either parses
// within bounds or fails with ErrBadOffer.
func FuzzParsePeerFileState(f *testing.F) {
	f.Add([]byte(`{"id":"abcdefgh","offset":10,"state":"uploading","devices":[{"device":"bravo@b.example/b1","delivered":true,"at":"2026-01-02T03:04:05Z"}]}`))
	f.Add([]byte(`{"id":"ABC","offset":-1,"state":"x"}`))
	f.Add([]byte(`{"id":"abc","offset":0,"state":"complete","devices":[{"device":"nodevice"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParsePeerFileState(b)
		if err != nil {
			if !errors.Is(err, ErrBadOffer) {
				t.Fatalf("error without ErrBadOffer: %v", err)
			}
			return
		}
		if checkID(st.ID) != nil || st.Offset < 0 || len(st.Devices) > 64 {
			t.Fatalf("accepted %+v", st)
		}
	})
}

func TestParseOffer(t *testing.T) {
	if _, err := ParseOffer(bytes.NewReader(validOffer())); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"path in the origin id": `{"origin_id":"../etc","recipient":"b@b.example","size":1,"header":"aA==","slots":[]}`,
		"unknown field":         `{"origin_id":"abc","evil":1}`,
		"no slot":               `{"origin_id":"abc","recipient":"b@b.example","size":1,"header":"aA==","slots":[]}`,
	} {
		if _, err := ParseOffer(strings.NewReader(body)); !errors.Is(err, ErrBadOffer) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
