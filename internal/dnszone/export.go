package dnszone

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// WriteZone writes the signed zone in master file syntax (RFC 1035 §5),
// signatures and NSEC3 chain included, so that another server (BIND, Knot)
// can serve exactly what this one does.
func (z *Zone) WriteZone(w io.Writer) error {
	v := z.view.Load()
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "$ORIGIN %s\n", v.origin)
	names := make([]string, 0, v.nodes.len())
	for name := range v.nodes.all() {
		names = append(names, name)
	}
	// The apex first: servers want the SOA at the top.
	slices.SortFunc(names, func(a, b string) int {
		if a == v.origin {
			return -1
		}
		if b == v.origin {
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		n := v.nodes.get(name)
		for _, t := range n.types {
			s := n.sets[t]
			for _, rr := range append(slices.Clone(s.rrs), s.sigs...) {
				fmt.Fprintln(bw, rr.String())
			}
		}
	}
	for l := range v.chain.all() {
		for _, rr := range append(slices.Clone(l.set.rrs), l.set.sigs...) {
			fmt.Fprintln(bw, rr.String())
		}
	}
	return bw.Flush()
}

// Records returns every record of the zone, signatures included, in no
// particular order.
func (z *Zone) Records() []dns.RR {
	v := z.view.Load()
	var out []dns.RR
	for _, n := range v.nodes.all() {
		for _, s := range n.sets {
			out = append(out, s.rrs...)
			out = append(out, s.sigs...)
		}
	}
	for l := range v.chain.all() {
		out = append(out, l.set.rrs...)
		out = append(out, l.set.sigs...)
	}
	return out
}
