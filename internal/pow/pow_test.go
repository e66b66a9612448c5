package pow

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestIssueSolveVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	tok := Issue(key, "alpha@example.org", 12, now.Add(time.Minute))
	n, err := Solve(context.Background(), "alpha@example.org", tok)
	if err != nil {
		t.Fatal(err)
	}
	if zeroBits(puzzle("alpha@example.org", tok), n) < 12 {
		t.Fatal("solution has too few zero bits")
	}
	forged := append([]byte{}, tok...)
	forged[1] = 1 // an easier puzzle under the same MAC
	for _, tc := range []struct {
		name    string
		key     []byte
		subject string
		token   []byte
		counter uint64
		min     int
		at      time.Time
		want    error
	}{
		{"ok", key, "alpha@example.org", tok, n, 12, now, nil},
		{"other key", []byte("another key"), "alpha@example.org", tok, n, 12, now, ErrForged},
		{"other subject", key, "bravo@example.org", tok, n, 12, now, ErrForged},
		{"edited bits", key, "alpha@example.org", forged, n, 1, now, ErrForged},
		{"expired", key, "alpha@example.org", tok, n, 12, now.Add(time.Minute), ErrExpired},
		{"too easy", key, "alpha@example.org", tok, n, 13, now, ErrTooEasy},
		{"short", key, "alpha@example.org", tok[:10], n, 12, now, ErrMalformed},
	} {
		_, err := Verify(tc.key, tc.subject, tc.token, tc.counter, tc.min, tc.at)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Some counter near the solution fails (2^-12 chance each to pass).
	fails := 0
	for c := n + 1; c < n+20; c++ {
		if _, err := Verify(key, "alpha@example.org", tok, c, 12, now); errors.Is(err, ErrUnsolved) {
			fails++
		}
	}
	if fails == 0 {
		t.Fatal("every counter solves the puzzle")
	}
}

func TestSolveRefusesHardPuzzles(t *testing.T) {
	tok := Issue([]byte("k"), "s", MaxBits+1, time.Now().Add(time.Minute))
	if _, err := Solve(context.Background(), "s", tok); !errors.Is(err, ErrTooHard) {
		t.Fatalf("%v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tok = Issue([]byte("k"), "s", MaxBits, time.Now().Add(time.Minute))
	if _, err := Solve(ctx, "s", tok); !errors.Is(err, context.Canceled) {
		t.Fatalf("%v", err)
	}
}

// FuzzVerify feeds arbitrary tokens from the network to the server side.
func FuzzVerify(f *testing.F) {
	key := []byte("fuzz key")
	f.Add(Issue(key, "a@b", 4, time.Unix(2_000_000_000, 0)), uint64(0))
	f.Add([]byte{}, uint64(1))
	f.Add(make([]byte, TokenSize), uint64(2))
	f.Add(append([]byte{1, 0xff}, make([]byte, TokenSize-2)...), uint64(3))
	f.Fuzz(func(t *testing.T, token []byte, counter uint64) {
		c, err := Verify(key, "a@b", token, counter, 1, time.Unix(1_900_000_000, 0))
		if err == nil && (c.Bits < 1 || len(token) != TokenSize) {
			t.Fatalf("accepted %x", token)
		}
		if _, err := Parse(token); err == nil && len(token) != TokenSize {
			t.Fatal("parsed a token of the wrong size")
		}
	})
}

// BenchmarkSolve20 is the work of the default login_pow_bits: 2^20 hashes
// on average, so one run is noisy; -benchtime 10x averages ten puzzles.
func BenchmarkSolve20(b *testing.B) {
	b.ReportAllocs()
	key := []byte("bench key")
	for b.Loop() {
		tok := Issue(key, "alpha@example.org", 20, time.Now().Add(time.Minute))
		if _, err := Solve(context.Background(), "alpha@example.org", tok); err != nil {
			b.Fatal(err)
		}
	}
}
