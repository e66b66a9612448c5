package udptcp

import (
	"errors"
	"syscall"
	"testing"
)

func TestListenOnePort(t *testing.T) {
	pc, ln, err := Listen("udp", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if pc.LocalAddr().String() != ln.Addr().String() {
		t.Fatalf("UDP on %s, TCP on %s", pc.LocalAddr(), ln.Addr())
	}
	addr := ln.Addr().String()
	pc.Close()
	// A fixed port whose TCP side is taken is an error, not another port.
	if _, _, err := Listen("udp", "tcp", addr); err == nil || !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("listen on %s with its TCP port held: %v", addr, err)
	}
	ln.Close()
	if _, _, err := Listen("udp", "tcp", "127.0.0.1"); err == nil {
		t.Fatal("an address without a port accepted")
	}
}
