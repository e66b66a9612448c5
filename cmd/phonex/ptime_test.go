package main

import (
	"testing"
	"time"
)

func TestPTimeFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"40", 40 * time.Millisecond, true},
		{"40ms", 40 * time.Millisecond, true},
		{" 60 ", 60 * time.Millisecond, true},
		{"0.02s", 20 * time.Millisecond, true},
		{"0", 0, false},
		{"-20", 0, false},
		{"forty", 0, false},
		{"", 0, false},
	} {
		var p ptimeValue
		err := p.Set(tc.in)
		if (err == nil) != tc.ok || (tc.ok && time.Duration(p) != tc.want) {
			t.Errorf("Set(%q) = %v, %v; want %v, ok %v", tc.in, time.Duration(p), err, tc.want, tc.ok)
		}
	}
}
