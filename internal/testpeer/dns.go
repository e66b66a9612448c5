package testpeer

// The DNS peers: validators that check the directory zone (delv, drill,
// unbound, dig) and the servers bench/dns.sh compares it with.
func init() {
	for _, p := range []Peer{
		{Name: "delv", Programs: []string{"delv"}, Package: "bind9-dnsutils"},
		{Name: "dig", Programs: []string{"dig"}, Package: "bind9-dnsutils"},
		{Name: "drill", Programs: []string{"drill"}, Package: "ldnsutils"},
		{Name: "ldns-verify-zone", Programs: []string{"ldns-verify-zone"}, Package: "ldnsutils"},
		{Name: "unbound", Programs: []string{"unbound"}, Package: "unbound"},
		{Name: "dnsperf", Programs: []string{"dnsperf"}, Package: "dnsperf"},
		{Name: "knotd", Programs: []string{"knotd"}, Package: "knot"},
		{Name: "named", Programs: []string{"named"}, Package: "bind9"},
	} {
		Known[p.Name] = p
	}
}
