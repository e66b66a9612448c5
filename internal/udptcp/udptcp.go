// Package udptcp opens UDP and TCP on one port, as DNS, STUN and TURN
// servers are reached: one address for both transports.
package udptcp

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// Listen opens UDP (udpNet: "udp", "udp4" or "udp6") and TCP (the matching
// tcpNet) on the port of addr. With port 0 the system picks the UDP port,
// which another socket (an outgoing connection's source port, say) may
// hold for TCP: then it tries other ports, up to 20. A fixed port whose
// TCP side is taken is an error.
func Listen(udpNet, tcpNet, addr string) (net.PacketConn, net.Listener, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	for i := 1; ; i++ {
		pc, err := net.ListenPacket(udpNet, addr)
		if err != nil {
			return nil, nil, fmt.Errorf("listen: %w", err)
		}
		ln, err := net.Listen(tcpNet, pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		if i == tries || !errors.Is(err, syscall.EADDRINUSE) {
			return nil, nil, fmt.Errorf("listen: %w", err)
		}
	}
}
