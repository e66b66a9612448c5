// Command dnszone is bench/dns.sh's helper: it signs a directory zone of n
// numbers with dnszone (the code phonexd serve --dns-addr runs), writes it
// as a master file for the reference servers and a dnsperf query file, and
// serves it on an address until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsname"
	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/udptcp"
)

func main() {
	n := flag.Int("n", 10000, "numbers in the zone")
	zone := flag.String("zone", "bench.example.", "zone apex")
	out := flag.String("out", ".", "directory for zone.db and queries.txt")
	addr := flag.String("serve", "", "serve the zone on this address (UDP and TCP); empty: only write the files")
	alg := flag.Int("alg", int(dnszone.ECDSAP256), "DNSSEC algorithm: 13 (ECDSA P-256) or 15 (Ed25519)")
	flag.Parse()

	ksk, err := dnszone.GenerateKey(*zone, uint8(*alg), true)
	check(err)
	zsk, err := dnszone.GenerateKey(*zone, uint8(*alg), false)
	check(err)
	z, err := dnszone.New(dnszone.Config{Origin: *zone, KSK: ksk, ZSK: zsk, NSAddrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	check(err)
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	var entries []dnszone.Entry
	var queries []string
	for len(entries) < *n {
		num := fmt.Sprintf("+4219%08d", r.IntN(100000000))
		if seen[num] {
			continue
		}
		seen[num] = true
		entries = append(entries, dnszone.Entry{E164: num, AOR: fmt.Sprintf("user%d@%s", len(entries), dns.Fqdn(*zone)[:len(dns.Fqdn(*zone))-1])})
		name, err := dnsname.ENUM(num, *zone)
		check(err)
		queries = append(queries, name+" NAPTR")
	}
	start := time.Now()
	check(z.SetEntries(entries))
	fmt.Fprintf(os.Stderr, "signed %d numbers: %d signatures in %v\n", *n, z.Signatures(), time.Since(start).Round(time.Millisecond))

	f, err := os.Create(filepath.Join(*out, "zone.db"))
	check(err)
	check(z.WriteZone(f))
	check(f.Close())
	q, err := os.Create(filepath.Join(*out, "queries.txt"))
	check(err)
	for _, l := range queries {
		fmt.Fprintln(q, l)
	}
	check(q.Close())
	if *addr == "" {
		return
	}
	pc, ln, err := udptcp.Listen("udp", "tcp", *addr)
	check(err)
	fmt.Printf("serving %s on %s\n", *zone, pc.LocalAddr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	check(z.Serve(ctx, pc, ln))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
