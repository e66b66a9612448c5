package testpeer

// The DNS peers: validators that check the directory zone (delv, dig,
// drill, ldns-verify-zone, unbound).
func init() {
	for _, p := range []Peer{
		{Name: "delv", Programs: []string{"delv"}, Package: "bind9-dnsutils"},
		{Name: "dig", Programs: []string{"dig"}, Package: "bind9-dnsutils"},
		{Name: "drill", Programs: []string{"drill"}, Package: "ldnsutils"},
		{Name: "ldns-verify-zone", Programs: []string{"ldns-verify-zone"}, Package: "ldnsutils"},
		{Name: "unbound", Programs: []string{"unbound"}, Package: "unbound"},
	} {
		Known[p.Name] = p
	}
}
