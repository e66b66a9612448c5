package client

import (
	"bytes"
	"errors"
	"testing"

	"github.com/phonex/phonex/internal/filecrypt"
)

func TestSplitBlob(t *testing.T) {
	good := frameBlob([]byte("header"), []byte("metadata"))
	for _, tc := range []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"framed", good, true},
		{"empty parts", frameBlob(nil, nil), true},
		{"empty", nil, false},
		{"short length", good[:3], false},
		{"header cut", good[:8], false},
		{"metadata cut", good[:len(good)-1], false},
		{"trailing byte", append(append([]byte{}, good...), 0), false},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 1, 2}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, m, err := splitBlob(tc.in)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && !errors.Is(err, filecrypt.ErrMalformed) {
				t.Fatalf("err %v is not ErrMalformed", err)
			}
			if err == nil && !bytes.Equal(frameBlob(h, m), tc.in) {
				t.Fatal("does not frame back to the input")
			}
		})
	}
}

// FuzzSplitBlob: the node hands the header blob over; any bytes either
// split into parts that frame back to them, or fail with ErrMalformed.
func FuzzSplitBlob(f *testing.F) {
	f.Add(frameBlob([]byte("header"), []byte("metadata")))
	f.Add(frameBlob(nil, nil))
	f.Add([]byte{0, 0, 0, 9, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, m, err := splitBlob(b)
		if err != nil {
			if !errors.Is(err, filecrypt.ErrMalformed) {
				t.Fatalf("err %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(frameBlob(h, m), b) {
			t.Fatal("does not frame back to the input")
		}
	})
}
