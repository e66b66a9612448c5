package kdf

import (
	"bytes"
	"testing"
)

// FuzzFinalize: the device finalizes whatever the server sends back as the
// OPRF evaluation. Anything but the evaluation of its own blinded element
// must give an error (or, for another valid element, a different output),
// never a panic.
func FuzzFinalize(f *testing.F) {
	k, err := NewOPRFKey()
	if err != nil {
		f.Fatal(err)
	}
	bl, err := Blind([]byte("password"))
	if err != nil {
		f.Fatal(err)
	}
	ev, err := k.Evaluate(bl.Message())
	if err != nil {
		f.Fatal(err)
	}
	want, err := bl.Finalize(ev)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ev)
	f.Add(bl.Message())
	f.Add([]byte{})
	f.Add(make([]byte, 32))
	f.Add(bytes.Repeat([]byte{0xff}, 32))
	f.Add(make([]byte, 65))
	f.Fuzz(func(t *testing.T, evaluated []byte) {
		y, err := bl.Finalize(evaluated)
		if err != nil {
			return
		}
		if bytes.Equal(evaluated, ev) != bytes.Equal(y, want) {
			t.Fatalf("evaluation %x gave output %x; the server's gives %x", evaluated, y, want)
		}
	})
}
