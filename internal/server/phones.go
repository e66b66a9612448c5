package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// PhonesOff is the sip_phone_addr value that turns the phone port off.
const PhonesOff = "off"

// PhoneAddr is where standard phones connect: sip_phone_addr, or by
// default the port after sip_addr's on the same host (port 0, any free
// port, stays 0). "" when the phone port is off.
func (c Config) PhoneAddr() string {
	switch c.SIPPhoneAddr {
	case PhonesOff:
		return ""
	case "":
	default:
		return c.SIPPhoneAddr
	}
	host, port, err := net.SplitHostPort(c.SIPAddr)
	if err != nil {
		return ""
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n >= 65535 {
		return ""
	}
	if n > 0 {
		n++
	}
	return net.JoinHostPort(host, strconv.Itoa(n))
}

// ListenFile, in the data directory, holds the addresses a running node
// listens on, so the operator's commands (a separate process) print those
// rather than a configured port 0 or a wildcard.
const ListenFile = "listening.json"

// Listening is the content of ListenFile.
type Listening struct {
	PID    int    `json:"pid"`
	API    string `json:"api"`
	SIP    string `json:"sip"`
	Phones string `json:"phones,omitempty"`
}

func writeListening(dir string, l Listening) error {
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, ListenFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("record the listening addresses: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, ListenFile))
}

// readListening returns what a node that still runs recorded.
func readListening(dir string) (Listening, bool) {
	var l Listening
	b, err := os.ReadFile(filepath.Join(dir, ListenFile))
	if err != nil || json.Unmarshal(b, &l) != nil || l.PID <= 0 {
		return l, false
	}
	if !processAlive(l.PID) {
		return l, false
	}
	return l, true
}

func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return err == nil || errors.Is(err, os.ErrPermission)
}

// phoneAddr is the phone port to give a phone: the running node's, else
// the configured one with a wildcard host replaced by the first of hosts
// (the names the server certificate carries, which a phone verifies).
func (a *Admin) phoneAddr() (addr string, live bool) {
	if l, ok := readListening(a.cfg.DataDir); ok && l.Phones != "" {
		addr, live = l.Phones, true
	} else {
		addr = a.cfg.PhoneAddr()
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil && len(a.cfg.Hosts) > 0 {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			addr = net.JoinHostPort(a.cfg.Hosts[0], port)
		}
	}
	return addr, live
}

// listenPhones opens the phone port, or returns nil when it is off.
func listenPhones(cfg Config) (net.Listener, error) {
	addr := cfg.PhoneAddr()
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("sip phone listener: %w", err)
	}
	return ln, nil
}

// recordListening writes ListenFile for the operator's commands and
// returns its removal, for when the node stops.
func recordListening(dir string, api, sip, phones net.Listener, log *slog.Logger) func() {
	l := Listening{PID: os.Getpid(), API: api.Addr().String(), SIP: sip.Addr().String()}
	if phones != nil {
		l.Phones = phones.Addr().String()
	}
	if err := writeListening(dir, l); err != nil {
		log.Warn("listening addresses not recorded; operator commands print the configured ones", "err", err)
		return func() {}
	}
	return func() { os.Remove(filepath.Join(dir, ListenFile)) }
}
