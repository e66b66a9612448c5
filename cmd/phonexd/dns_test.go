package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/freeport"
	"github.com/phonex/phonex/internal/server"
)

// TestServeDNS: 'phonexd serve --dns-addr' answers for the zone with the
// node's SIP endpoint, validated from the DS 'phonexd dns ds' prints.
func TestServeDNS(t *testing.T) {
	data := filepath.Join(t.TempDir(), "d")
	var initOut strings.Builder
	if code := run(context.Background(), []string{"init", "--data", data, "--domain", "a.example"}, &initOut, io.Discard); code != 0 {
		t.Fatalf("init: %s", initOut.String())
	}
	var dsOut strings.Builder
	if code := run(context.Background(), []string{"dns", "ds", "--data", data}, &dsOut, io.Discard); code != 0 {
		t.Fatal("dns ds failed")
	}
	ds, err := dns.NewRR(strings.TrimSpace(dsOut.String()))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(initOut.String(), ds.String()) {
		t.Fatalf("init printed no DS matching 'dns ds':\n%s", initOut.String())
	}
	// A fixed SIP port: a listener on port 0 is not published.
	port := freeport.Port(t)
	sipAddr, sipPort := fmt.Sprintf("127.0.0.1:%d", port), uint16(port)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--api-addr", "127.0.0.1:0", "--sip-addr", sipAddr,
			"--sip-phone-addr", "off", "--relay-addr", "127.0.0.1:0", "--relay-tls-addr", "off", "--dns-addr", "127.0.0.1:0"}, pw, io.Discard)
		pw.Close()
	}()
	defer func() { cancel(); <-done }()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	for addr == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("serve ended without a dns line")
			}
			if rest, ok := strings.CutPrefix(l, "dns: "); ok {
				addr, _, _ = strings.Cut(rest, " ")
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no dns line")
		}
	}
	go func() {
		for range lines {
		}
	}()
	r := &dnsval.Resolver{Server: addr, Anchors: []dns.RR{ds}}
	srv, err := r.SRV(ctx, "sips", "tcp", "a.example")
	if err != nil || len(srv) != 1 || srv[0].Port != sipPort {
		t.Fatalf("SRV: %v %v", srv, err)
	}
	cfg, err := server.LoadConfig(data)
	if err != nil || cfg.DNS.Addr != "" {
		t.Fatalf("--dns-addr must not be written to the configuration: %q %v", cfg.DNS.Addr, err)
	}
}
