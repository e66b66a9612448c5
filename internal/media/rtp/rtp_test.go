package rtp

import (
	"bytes"
	"errors"
	"testing"
)

func TestPacketizeParse(t *testing.T) {
	// SSRC 0x01020304, sequence 0xFFFF (wraps after one packet), timestamp 0xFFFFFF00.
	rnd := bytes.NewReader([]byte{1, 2, 3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00})
	p, err := NewPacketizer(111, rnd)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	want := []struct {
		seq    uint16
		ts     uint32
		marker bool
	}{{0xFFFF, 0xFFFFFF00, true}, {0, 0x000002C0, false}, {1, 0x000002C0 + 2*960, true}}
	for i, w := range want {
		if i == 2 {
			p.Skip(960) // one frame suppressed by DTX
		}
		buf, err = p.Packetize(buf, []byte{byte(i), 0xAA}, 960)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Parse(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.SequenceNumber != w.seq || got.Timestamp != w.ts || got.Marker != w.marker ||
			got.SSRC != 0x01020304 || got.PayloadType != 111 || !bytes.Equal(got.Payload, []byte{byte(i), 0xAA}) {
			t.Errorf("packet %d: %+v, want %+v", i, got, w)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		payload []byte
		err     bool
	}{
		{"minimal", []byte{0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, []byte{}, false},
		{"csrc", []byte{0x81, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9, 9, 9, 0xAB}, []byte{0xAB}, false},
		{"padding", []byte{0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xAB, 0, 2}, []byte{0xAB}, false},
		{"extension", []byte{0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xBE, 0xDE, 0, 1, 0x10, 0xFF, 0, 0, 0xAB}, []byte{0xAB}, false},
		{"short", []byte{0x80, 0, 0}, nil, true},
		{"version 1", []byte{0x40, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3}, nil, true},
		{"padding too long", []byte{0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xAB, 9}, nil, true},
		{"padding zero", []byte{0xA0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xAB, 0}, nil, true},
		{"csrc missing", []byte{0x82, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse(tt.in)
			if tt.err {
				if !errors.Is(err, ErrPacket) {
					t.Fatalf("err = %v, want ErrPacket", err)
				}
				return
			}
			if err != nil || !bytes.Equal(p.Payload, tt.payload) {
				t.Fatalf("payload %x, err %v", p.Payload, err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 1})
	f.Add([]byte{0xB1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 9, 9, 9, 9, 0xBE, 0xDE, 0, 1, 0x10, 0xFF, 0, 0, 0xAB, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Parse(in)
		if err != nil {
			return
		}
		if len(p.Payload) > len(in)-HeaderLen {
			t.Fatalf("payload of %d bytes from %d", len(p.Payload), len(in))
		}
	})
}
