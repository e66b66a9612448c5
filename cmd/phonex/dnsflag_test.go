package main

import (
	"strings"
	"testing"
)

func TestDNSFlagArgs(t *testing.T) {
	for _, c := range []struct {
		in, out string
		given   bool
	}{
		{"+420777000111", "+420777000111", false},
		{"+420777000111 --dns 127.0.0.1:53", "+420777000111 --dns=127.0.0.1:53", true},
		{"--dns 127.0.0.1:53 +420777000111", "--dns=127.0.0.1:53 +420777000111", true},
		{"--dns [::1]:53 alice@example.org --json", "--dns=[::1]:53 alice@example.org --json", true},
		{"-dns=ns.example:53 +420777000111", "-dns=ns.example:53 +420777000111", true},
		{"+420777000111 --dns", "+420777000111 --dns=\x00node", true},
		{"--dns +420777000111", "--dns=\x00node +420777000111", true},
		{"--dns alice@example.org", "--dns=\x00node alice@example.org", true},
		{"--dns --json +420777000111", "--dns=\x00node --json +420777000111", true},
		{"--dns= +420777000111", "--dns= +420777000111", true},
		{"-- --dns", "-- --dns", false},
		{"--dnsx 1 +4201", "--dnsx 1 +4201", false},
	} {
		got, given := dnsFlagArgs(strings.Fields(c.in))
		if strings.Join(got, " ") != c.out || given != c.given {
			t.Errorf("%q: %q %v, want %q %v", c.in, strings.Join(got, " "), given, c.out, c.given)
		}
	}
}
