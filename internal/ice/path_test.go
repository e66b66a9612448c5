package ice

import (
	"slices"
	"testing"

	pice "github.com/pion/ice/v4"
)

func TestPathOf(t *testing.T) {
	h, s, p, r := pice.CandidateTypeHost, pice.CandidateTypeServerReflexive, pice.CandidateTypePeerReflexive, pice.CandidateTypeRelay
	for _, tt := range []struct {
		local, remote pice.CandidateType
		want          Path
	}{
		{h, h, PathHost},
		{s, h, PathSrflx},
		{h, s, PathSrflx},
		{p, h, PathSrflx},
		{h, p, PathSrflx},
		{s, s, PathSrflx},
		{r, h, PathRelay},
		{h, r, PathRelay},
		{r, s, PathRelay},
		{r, r, PathRelay},
	} {
		if got := PathOf(tt.local, tt.remote); got != tt.want {
			t.Errorf("PathOf(%s, %s) = %q, want %q", tt.local, tt.remote, got, tt.want)
		}
	}
}

func TestCandidateLine(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"1 1 udp 2130706431 10.0.1.2 4000 typ host generation 0 ufrag abcd network-id 1",
			"1 1 udp 2130706431 10.0.1.2 4000 typ host"},
		{"2 1 udp 1694498815 198.18.1.2 61000 typ srflx raddr 10.0.1.2 rport 4000 generation 0",
			"2 1 udp 1694498815 198.18.1.2 61000 typ srflx raddr 10.0.1.2 rport 4000"},
		// A relayed candidate's related address would reveal ours.
		{"3 1 udp 16777215 198.18.1.1 50000 typ relay raddr 198.18.1.2 rport 61001",
			"3 1 udp 16777215 198.18.1.1 50000 typ relay raddr 0.0.0.0 rport 9"},
		{"4 1 tcp 1518280447 10.0.1.2 9 typ host tcptype active",
			"4 1 tcp 1518280447 10.0.1.2 9 typ host tcptype active"},
	} {
		c, err := pice.UnmarshalCandidate(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := candidateLine(c); got != tt.want {
			t.Errorf("candidateLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if _, err := pice.UnmarshalCandidate(candidateLine(c)); err != nil {
			t.Errorf("%q does not parse back: %v", candidateLine(c), err)
		}
	}
}

func TestKeepFew(t *testing.T) {
	var in []pice.Candidate
	for i, line := range []string{
		"1 1 udp 2130706431 10.0.0.1 1000 typ host",
		"2 1 udp 2130706430 10.0.0.2 1000 typ host",
		"3 1 udp 2130706429 10.0.0.3 1000 typ host",
		"4 1 udp 2130706432 10.0.0.4 1000 typ host", // the best host, listed last
		"5 1 udp 2130706428 10.0.0.5 1000 typ host",
		"6 1 udp 1694498815 198.18.0.1 2000 typ srflx raddr 10.0.0.1 rport 1000",
		"7 1 udp 16777215 198.18.0.2 3000 typ relay raddr 0.0.0.0 rport 9",
	} {
		c, err := pice.UnmarshalCandidate(line)
		if err != nil {
			t.Fatal(i, err)
		}
		in = append(in, c)
	}
	var got []string
	for _, c := range keepFew(in) {
		got = append(got, c.Foundation())
	}
	if want := []string{"4", "1", "2", "6", "7"}; !slices.Equal(got, want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
}
