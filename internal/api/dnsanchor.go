package api

// PathDirAnchor gives an enrolled device the trust anchor of the cluster's
// directory zone (GET, device certificate needed): the zone's DS records
// and, when the node serves the zone, its DNS address. The device trusts
// them because they come over mutual TLS from the node whose CA it pinned.
const PathDirAnchor = "/v1/directory/anchor"

// CodeNoZone: the cluster has no signed directory zone.
const CodeNoZone = "no_zone"

// DirAnchor is the zone's trust anchor: one DS record (master file syntax)
// per key-signing key the zone publishes, two during a KSK rollover.
type DirAnchor struct {
	Zone    string   `json:"zone"`
	DS      []string `json:"ds"`
	DNSAddr string   `json:"dns_addr,omitempty"` // host:port of the node's authoritative server
}
