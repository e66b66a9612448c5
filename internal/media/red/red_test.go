package red

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		red  []Block
	}{
		{"primary only", nil},
		{"one", []Block{{PT: 96, TSOffset: 5760, Payload: []byte{1, 2, 3}}}},
		{"two", []Block{{PT: 96, TSOffset: 11520, Payload: bytes.Repeat([]byte{7}, MaxLength)}, {PT: 0, TSOffset: 5760, Payload: nil}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pkt, err := Append(nil, Block{PT: 96, Payload: []byte("primary")}, tt.red...)
			if err != nil {
				t.Fatal(err)
			}
			if want := 1 + 4*len(tt.red) + len("primary") + sum(tt.red); len(pkt) != want {
				t.Fatalf("%d bytes, want %d", len(pkt), want)
			}
			p, r, err := Parse(pkt)
			if err != nil || p.PT != 96 || string(p.Payload) != "primary" || len(r) != len(tt.red) {
				t.Fatalf("parse: %+v %+v %v", p, r, err)
			}
			for i := range r {
				if r[i].PT != tt.red[i].PT || r[i].TSOffset != tt.red[i].TSOffset || !bytes.Equal(r[i].Payload, tt.red[i].Payload) {
					t.Fatalf("block %d: %+v, want %+v", i, r[i], tt.red[i])
				}
			}
		})
	}
}

func sum(bs []Block) (n int) {
	for _, b := range bs {
		n += len(b.Payload)
	}
	return n
}

// TestRFC2198Example parses the packet of RFC 2198 §3's figure: a block
// header with F set, payload type 0, offset 100 and length 4, then the
// primary's header with payload type 96.
func TestRFC2198Example(t *testing.T) {
	h := uint32(1)<<31 | 0<<24 | 100<<10 | 4
	pkt := []byte{byte(h >> 24), byte(h >> 16), byte(h >> 8), byte(h), 96, 'r', 'e', 'd', '!', 'p'}
	p, r, err := Parse(pkt)
	if err != nil || len(r) != 1 || r[0].PT != 0 || r[0].TSOffset != 100 || string(r[0].Payload) != "red!" || p.PT != 96 || string(p.Payload) != "p" {
		t.Fatalf("%+v %+v %v", p, r, err)
	}
}

func TestMalformed(t *testing.T) {
	good, _ := Append(nil, Block{PT: 96, Payload: []byte{9}}, Block{PT: 96, TSOffset: 960, Payload: []byte{1, 2}})
	for name, p := range map[string][]byte{
		"empty":             {},
		"header cut":        good[:3],
		"no primary header": good[:4],
		"block cut":         good[:6],
		"too many blocks":   bytes.Repeat([]byte{0x80, 0, 0, 0}, MaxBlocks+1),
	} {
		if _, _, err := Parse(p); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Append(nil, Block{PT: 96}, Block{PT: 96, Payload: make([]byte, MaxLength+1)}); err == nil {
		t.Error("oversized block accepted")
	}
	if _, err := Append(nil, Block{PT: 96}, Block{PT: 96, TSOffset: MaxTSOffset + 1}); err == nil {
		t.Error("oversized offset accepted")
	}
}

func FuzzParse(f *testing.F) {
	one, _ := Append(nil, Block{PT: 96, Payload: []byte{0x4b, 1, 2}}, Block{PT: 96, TSOffset: 5760, Payload: []byte{0x4b, 3}})
	two, _ := Append(nil, Block{PT: 111, Payload: nil}, Block{PT: 111, TSOffset: 11520, Payload: []byte{1}}, Block{PT: 111, TSOffset: 5760})
	for _, s := range [][]byte{one, two, {96}, {0x80, 0, 0, 4, 96}, {}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		prim, r, err := Parse(p)
		if err != nil {
			return
		}
		out, err := Append(nil, prim, r...)
		if err != nil {
			t.Fatalf("a parsed payload does not marshal: %v", err)
		}
		if !bytes.Equal(out, p) {
			t.Fatalf("round trip changed %x to %x", p, out)
		}
	})
}
