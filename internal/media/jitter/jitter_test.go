package jitter

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

const frame = 20 * time.Millisecond

var t0 = time.Unix(1000, 0)

type push struct {
	at  int // milliseconds after t0
	seq uint16
}

// run pushes the packets at their times and pops at every 20 ms tick up to
// end ms, and returns what came out: "5" for a frame, "L5" for a lost one.
func run(t *testing.T, cfg Config, pushes []push, end int) (string, []Result, *Buffer) {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var results []Result
	i := 0
	for ms := 0; ms <= end; ms += 10 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		for ; i < len(pushes) && pushes[i].at <= ms; i++ {
			r, err := b.Push(now, pushes[i].seq, []byte{byte(pushes[i].seq)})
			if err != nil {
				t.Fatal(err)
			}
			results = append(results, r)
		}
		for {
			f, ok := b.Pop(now)
			if !ok {
				break
			}
			switch {
			case f.Lost:
				out = append(out, fmt.Sprintf("L%d", f.Seq))
			case len(f.Payload) != 1 || f.Payload[0] != byte(f.Seq):
				t.Fatalf("frame %d carries %x", f.Seq, f.Payload)
			default:
				out = append(out, fmt.Sprint(f.Seq))
			}
		}
	}
	return strings.Join(out, " "), results, b
}

// steady returns packets seq..seq+n-1 sent every 20 ms from start ms.
func steady(start int, seq uint16, n int) []push {
	var p []push
	for i := range n {
		p = append(p, push{start + 20*i, seq + uint16(i)})
	}
	return p
}

func TestBuffer(t *testing.T) {
	cfg := Config{Frame: frame, Delay: 40 * time.Millisecond, Capacity: 16}
	tests := []struct {
		name    string
		pushes  []push
		end     int
		want    string
		results string
	}{
		{"in order", steady(0, 1, 4), 100, "1 2 3 4", ""},
		{"reorder", []push{{0, 1}, {20, 3}, {30, 2}, {60, 4}}, 100, "1 2 3 4", ""},
		{"loss", []push{{0, 1}, {20, 2}, {60, 4}, {80, 5}}, 120, "1 2 L3 4 5", ""},
		{"duplicate", []push{{0, 1}, {10, 1}, {20, 2}, {30, 2}}, 60, "1 2", "accepted duplicate accepted duplicate"},
		{"wrap-around", []push{{0, 65534}, {20, 0}, {25, 65535}, {60, 1}}, 100, "65534 65535 0 1", ""},
		{"first packets reordered", []push{{0, 11}, {10, 10}, {40, 12}}, 80, "10 11 12", ""},
		// 2 arrives after its play-out time (t=60) and is not played.
		{"late", []push{{0, 1}, {20, 3}, {70, 2}, {80, 4}}, 120, "1 L2 3 4", "accepted accepted late accepted"},
		{"sender jumps ahead", []push{{0, 100}, {20, 101}, {100, 30000}, {120, 30001}}, 200, "100 101 L102 30000 30001", "accepted accepted resynced accepted"},
		{"sender jumps back", []push{{0, 30000}, {20, 30001}, {100, 100}, {120, 101}}, 200, "30000 30001 L30002 100 101", "accepted accepted resynced accepted"},
		// Ten frames delivered at once are trimmed to twice the target
		// delay (6 frames) by dropping the oldest, one per tick.
		{"burst", []push{{0, 1}, {0, 2}, {0, 3}, {0, 4}, {0, 5}, {0, 6}, {0, 7}, {0, 8}, {0, 9}, {0, 10}}, 300, "2 4 5 6 7 8 9 10", ""},
		// After a buffer's worth of nothing the buffer goes idle.
		{"stream stops", []push{{0, 1}}, 1000, "1 L2 L3 L4 L5 L6 L7 L8 L9 L10 L11 L12 L13 L14 L15 L16 L17", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, results, _ := run(t, cfg, tt.pushes, tt.end)
			// Lost frames after the last packet are expected; compare up
			// to them, except where the test is about them.
			if f := strings.Fields(got); tt.name != "stream stops" && len(f) > len(strings.Fields(tt.want)) {
				got = strings.Join(f[:len(strings.Fields(tt.want))], " ")
			}
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if tt.results != "" {
				var rs []string
				for _, r := range results {
					rs = append(rs, r.String())
				}
				if s := strings.Join(rs, " "); s != tt.results {
					t.Fatalf("results %q, want %q", s, tt.results)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{}, {Frame: frame, Delay: time.Second, Capacity: 10}, {Frame: frame, Capacity: 1 << 20}} {
		if _, err := New(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	b, _ := New(Config{Frame: frame})
	if _, err := b.Push(t0, 1, make([]byte, MaxPayload+1)); err == nil {
		t.Error("oversized payload accepted")
	}
}

// FuzzBuffer drives the buffer with arbitrary arrivals: each 4-byte record
// is a time step in ms, a sequence number, and a payload length. Payloads
// carry their sequence number, so a frame played with the wrong payload is
// caught.
func FuzzBuffer(f *testing.F) {
	f.Add([]byte{0, 0, 1, 2, 20, 0, 2, 2, 5, 0, 4, 8, 30, 0, 3, 2, 100, 0xFF, 0xFF, 2})
	f.Add([]byte{0, 0xFF, 0xFE, 2, 10, 0xFF, 0xFF, 2, 10, 0, 0, 2, 10, 0, 1, 2, 250, 0x80, 0, 2})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := New(Config{Frame: frame, Delay: 60 * time.Millisecond, Capacity: 8})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for ; len(in) >= 4; in = in[4:] {
			now = now.Add(time.Duration(in[0]) * time.Millisecond)
			seq := uint16(in[1])<<8 | uint16(in[2])
			payload := make([]byte, 2+int(in[3])%64)
			payload[0], payload[1] = in[1], in[2]
			if _, err := b.Push(now, seq, payload); err != nil {
				t.Fatal(err)
			}
			if b.Len() > 8 {
				t.Fatalf("%d frames buffered", b.Len())
			}
			// What Next shows must be what the following Pop releases
			// when no Push comes in between.
			peek, peeked := b.Next()
			var want uint16
			if peeked {
				want = uint16(peek[0])<<8 | uint16(peek[1])
			}
			for {
				fr, ok := b.Pop(now)
				if !ok {
					break
				}
				if !fr.Lost && (len(fr.Payload) < 2 || uint16(fr.Payload[0])<<8|uint16(fr.Payload[1]) != fr.Seq) {
					t.Fatalf("frame %d carries %x", fr.Seq, fr.Payload)
				}
				if peeked && (fr.Lost || fr.Seq != want) {
					t.Fatalf("Next showed %d, Pop released %d (lost %v)", want, fr.Seq, fr.Lost)
				}
				peek, peeked = b.Next()
				if peeked {
					want = uint16(peek[0])<<8 | uint16(peek[1])
				}
			}
		}
		s := b.Stats()
		if s.Played > s.Pushed {
			t.Fatalf("played %d of %d pushed", s.Played, s.Pushed)
		}
	})
}

// TestNext checks the one-packet look-ahead a decoder with in-band FEC
// needs: when frame 2 is lost, packet 3 is already buffered.
func TestNext(t *testing.T) {
	b, err := New(Config{Frame: frame, Delay: 60 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Next(); ok {
		t.Fatal("Next on an empty buffer")
	}
	for _, seq := range []uint16{0, 1, 3, 4} {
		if _, err := b.Push(t0, seq, []byte{byte(seq)}); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for ms := 60; ms <= 160; ms += 20 {
		fr, ok := b.Pop(t0.Add(time.Duration(ms) * time.Millisecond))
		if !ok {
			t.Fatalf("nothing due at %d ms", ms)
		}
		next, ok := b.Next()
		got = append(got, fmt.Sprintf("%d/%v->%v:%x", fr.Seq, fr.Lost, ok, next))
	}
	want := "0/false->true:01 1/false->false: 2/true->true:03 3/false->true:04 4/false->false: 5/true->false:"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
}

func BenchmarkPushPop(b *testing.B) {
	buf, _ := New(Config{Frame: frame})
	payload := make([]byte, 60)
	now := t0
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		buf.Push(now, seq, payload)
		now = now.Add(frame)
		seq++
		for {
			if _, ok := buf.Pop(now); !ok {
				break
			}
		}
	}
}
