package codec

import (
	"errors"
	"testing"
	"time"
)

func TestOpusPacketHasFEC(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		fec  bool
		err  error
	}{
		// config 9: SILK WB 20 ms, one SILK frame: VAD bit 7, LBRR bit 6.
		{"SILK 20 ms with LBRR", []byte{9 << 3, 0b0100_0000, 1}, true, nil},
		{"SILK 20 ms without", []byte{9 << 3, 0b1000_0000, 1}, false, nil},
		// config 10: SILK WB 40 ms, two SILK frames: LBRR bit 5.
		{"SILK 40 ms with LBRR", []byte{10 << 3, 0b0010_0000}, true, nil},
		{"SILK 40 ms VAD only", []byte{10 << 3, 0b1100_0000}, false, nil},
		// config 11: 60 ms, three SILK frames: LBRR bit 4.
		{"SILK 60 ms with LBRR", []byte{11 << 3, 0b0001_0000}, true, nil},
		// config 13: hybrid SWB 20 ms.
		{"hybrid with LBRR", []byte{13 << 3, 0b0100_0000}, true, nil},
		{"CELT", []byte{31 << 3, 0xFF}, false, nil},
		{"DTX frame", []byte{9 << 3}, false, nil},
		{"code 1", []byte{9<<3 | 1, 0x40, 0, 0x00, 0}, true, nil},
		{"code 1 odd", []byte{9<<3 | 1, 0x40, 0, 0}, false, ErrOpusPacket},
		{"code 2", []byte{9<<3 | 2, 1, 0x40, 0, 0}, true, nil},
		{"code 2 short", []byte{9<<3 | 2, 5, 0x40}, false, ErrOpusPacket},
		{"code 3 CBR", []byte{9<<3 | 3, 2, 0x40, 0x00}, true, nil},
		{"code 3 VBR", []byte{9<<3 | 3, 0x82, 1, 0x40, 0, 0}, true, nil},
		{"code 3 padded", []byte{9<<3 | 3, 0x41, 2, 0x40, 0, 0}, true, nil},
		{"code 3 zero frames", []byte{9<<3 | 3, 0}, false, ErrOpusPacket},
		{"empty", nil, false, ErrOpusPacket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fec, err := OpusPacketHasFEC(tc.pkt)
			if !errors.Is(err, tc.err) || fec != tc.fec {
				t.Fatalf("got %v, %v; want %v, %v", fec, err, tc.fec, tc.err)
			}
		})
	}
}

func TestOpusPacketDuration(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want time.Duration
		err  error
	}{
		{[]byte{9 << 3}, 20 * time.Millisecond, nil},
		{[]byte{10 << 3, 0}, 40 * time.Millisecond, nil},
		{[]byte{11 << 3, 0}, 60 * time.Millisecond, nil},
		{[]byte{9<<3 | 1, 0, 0}, 40 * time.Millisecond, nil},
		{[]byte{9<<3 | 3, 3}, 60 * time.Millisecond, nil},
		{[]byte{13 << 3}, 20 * time.Millisecond, nil},
		{[]byte{16 << 3}, 2500 * time.Microsecond, nil},
		{[]byte{11<<3 | 3, 3}, 0, ErrOpusPacket}, // 180 ms
		{[]byte{9<<3 | 3, 0}, 0, ErrOpusPacket},
		{nil, 0, ErrOpusPacket},
	} {
		d, err := OpusPacketDuration(tc.pkt)
		if d != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("%x: %v, %v; want %v, %v", tc.pkt, d, err, tc.want, tc.err)
		}
	}
}

func FuzzOpusPacketHasFEC(f *testing.F) {
	for _, s := range [][]byte{{9 << 3, 0x40}, {10<<3 | 3, 0xC3, 3, 1, 2, 0x20, 0, 0, 0}, {9<<3 | 2, 252, 1}, {}} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fec, err := OpusPacketHasFEC(pkt)
		if err != nil && fec {
			t.Fatal("FEC reported with an error")
		}
		if d, err := OpusPacketDuration(pkt); err == nil && (d <= 0 || d > 120*time.Millisecond) {
			t.Fatalf("duration %v", d)
		}
	})
}
