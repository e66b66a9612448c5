// Package freeport picks loopback ports for tests that must tell another
// process (a third-party peer, a phonexd started as a binary) which port
// to listen on, so cannot keep a listener of their own on it.
//
// A port the kernel hands out for "127.0.0.1:0" comes from the ephemeral
// range, the same range every outgoing connection of every test running
// beside it takes its source port from: between closing the probe and the
// peer's bind, one of them can take it ("Address already in use"). A port
// below that range is never handed out by the kernel, so only another
// explicit pick can collide, and a pick is random and checked free.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// floor is the lowest port picked: above the registered services that a
// developer's machine may run on loopback (PostgreSQL 5432, 8080, 8443...).
const floor = 20000

// Pick returns a port free on 127.0.0.1 for both TCP and UDP when asked,
// below the kernel's ephemeral range.
func Pick() (int, error) {
	hi := ephemeralLow()
	if hi-floor < 1000 {
		return 0, fmt.Errorf("freeport: the ephemeral range starts at %d, too low to pick below it", hi)
	}
	for range 100 {
		port := floor + rand.IntN(hi-floor)
		if free(port) {
			return port, nil
		}
	}
	return 0, errors.New("freeport: no free port in 100 tries")
}

// Port is Pick for a test: it fails the test when no port is found.
func Port(t testing.TB) int {
	t.Helper()
	p, err := Pick()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Addr is Port as a host:port on 127.0.0.1.
func Addr(t testing.TB) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(Port(t)))
}

func free(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	tl, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer tl.Close()
	ul, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	ul.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux;
// 32768 where it cannot be read, the low end of Linux's default and below
// the IANA range other systems use).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768
}
