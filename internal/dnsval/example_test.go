package dnsval_test

import (
	"context"
	"fmt"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsval"
	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/udptcp"
)

// A device resolves a phone number to a SIP address through the zone,
// trusting only the zone's DS record.
func ExampleResolver_SIPAddress() {
	ksk, _ := dnszone.GenerateKey("a.example.", dnszone.Ed25519, true)
	zsk, _ := dnszone.GenerateKey("a.example.", dnszone.Ed25519, false)
	zone, _ := dnszone.New(dnszone.Config{Origin: "a.example.", KSK: ksk, ZSK: zsk})
	zone.SetEntries([]dnszone.Entry{{E164: "+421900111222", AOR: "alice@a.example"}})
	pc, ln, _ := udptcp.Listen("udp", "tcp", "127.0.0.1:0")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go zone.Serve(ctx, pc, ln)

	r := &dnsval.Resolver{Server: pc.LocalAddr().String(), Anchors: []dns.RR{zone.DS()}}
	aor, err := r.SIPAddress(ctx, "+421900111222")
	fmt.Println(aor, err)
	_, err = r.SIPAddress(ctx, "+421900111333")
	fmt.Println(err)
	// Output:
	// alice@a.example <nil>
	// 3.3.3.1.1.1.0.0.9.1.2.4.e164.a.example.: no such name (proven by DNSSEC)
}
