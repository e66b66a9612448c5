package api

// Paths one cluster's node calls on another's over mutual TLS with its node
// certificate; the device a call is made for is named by its certificate
// in the X-PhoneX-Device-Cert header.
const (
	PathFederationKeys     = "/v1/federation/keys"     // GET .../USER@DOMAIN: as GET PathKeys/USER
	PathFederationContacts = "/v1/federation/contacts" // GET .../USER@DOMAIN: one contact entry
)

// CodePeerUnreachable: the cluster of a remote account cannot be reached
// now; retry later.
const CodePeerUnreachable = "peer_unreachable"
