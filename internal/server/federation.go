package server

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/ident"
	"github.com/phonex/phonex/internal/server/federation"
	"github.com/phonex/phonex/internal/store"
)

// federation is the node's federation service, made on first use. The
// node certificate is the server certificate: issued by the cluster CA for
// the cluster's domain with both the server and the client usage, so the
// same certificate serves devices and authenticates this node to peers.
func (n *Node) federation() *federation.Service {
	n.fedOnce.Do(func() {
		tc, err := n.TLSConfig()
		if err != nil {
			n.log.Error("federation disabled: no node certificate", "err", err)
			return
		}
		n.fed = federation.New(n.cfg.Domain, n.st, tc.Certificates[0], n.log)
		host, _ := os.Hostname()
		h := sha256.Sum256([]byte("phonex/v1/queue-holder\x00" + host + "\x00" + n.cfg.DataDir + "\x00" + n.cfg.SIPAddr))
		n.fed.Queue.Holder = hex.EncodeToString(h[:12])
	})
	return n.fed
}

// federationRoutes are the calls peers' nodes make.
func (n *Node) federationRoutes(m *http.ServeMux) {
	m.HandleFunc("GET "+api.PathFederationKeys+"/{user}", n.peerAuthed(n.getKeys))
	m.HandleFunc("GET "+api.PathFederationContacts+"/{user}", n.peerAuthed(n.peerContact))
	n.federatedFileRoutes(m) // federation_files.go
}

// peerAuthed wraps a handler a peer's node calls for one of its devices:
// the node's certificate and the device's (HeaderDeviceCert) are checked
// against the CA pinned for the node's domain, and the handler sees the
// remote device as its caller. A remote caller has no local account or
// device: its ids are negative, so no local row matches them, and its
// device id (a hash of its name) keys the one-time key handout limit.
func (n *Node) peerAuthed(h func(ctx context.Context, r *http.Request, c *caller) (any, error)) http.HandlerFunc {
	return n.authedBy(n.peerCaller, h)
}

// peerCaller authenticates a peer node's call for one of its devices.
func (n *Node) peerCaller(r *http.Request) (*caller, error) {
	fed := n.federation()
	if fed == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, errorf(http.StatusUnauthorized, api.CodeCertRequired, "this call needs a peer node's certificate")
	}
	domain, err := fed.Pins.VerifyNode(r.Context(), r.TLS.PeerCertificates, x509.ExtKeyUsageClientAuth)
	switch {
	case errors.Is(err, federation.ErrNotNode):
		return nil, errorf(http.StatusUnauthorized, api.CodeCertUnknown, "the certificate names no cluster node")
	case errors.Is(err, federation.ErrUnknownPeer):
		return nil, errorf(http.StatusForbidden, api.CodeNotAllowed, "%s is not a federation peer of %s", domain, n.cfg.Domain)
	case errors.Is(err, federation.ErrCAChanged):
		return nil, errorf(http.StatusForbidden, api.CodeCertUnknownCA, "the node certificate was not issued by the CA pinned for %s", domain)
	case err != nil:
		return nil, err
	}
	der, err := federation.ParseCert(r.Header.Get(federation.HeaderDeviceCert))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, api.CodeBadRequest, "%v", err)
	}
	dev, cert, err := fed.Pins.VerifyDevice(r.Context(), domain, der)
	if err != nil {
		return nil, errorf(http.StatusForbidden, api.CodeCertUnknownCA, "the device certificate is not valid for %s", domain)
	}
	return &caller{id: dev, cert: cert,
		account: store.Account{ID: -1, Name: dev.Account.String(), Status: store.StatusActive},
		device:  store.Device{ID: federation.RemoteDeviceID(dev), Name: dev.Name, Status: store.StatusActive}}, nil
}

// authedBy is authed with another authentication.
func (n *Node) authedBy(auth func(*http.Request) (*caller, error), h func(ctx context.Context, r *http.Request, c *caller) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := auth(r)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		v, err := h(r.Context(), r, c)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		writeJSON(w, v)
	}
}

// peerContact is one local account's contact entry, for a peer's device.
func (n *Node) peerContact(ctx context.Context, r *http.Request, c *caller) (any, error) {
	acct, err := n.parseLocal(r.PathValue("user"))
	if err != nil {
		return nil, err
	}
	a, err := n.st.Account(ctx, acct.String())
	if errors.Is(err, store.ErrNotFound) || (err == nil && a.Status == store.StatusPending) {
		return nil, errorf(http.StatusNotFound, api.CodeUnknownUser, "no account %s on this cluster", acct)
	}
	if err != nil {
		return nil, err
	}
	return n.contactEntry(ctx, a.Name)
}

// remote reports whether user names an account of a peer domain.
func (n *Node) remote(ctx context.Context, user string) (ident.Account, bool, error) {
	a, err := ident.ParseAccount(user)
	if err != nil || a.Domain == n.cfg.Domain {
		return a, false, nil
	}
	fed := n.federation()
	if fed == nil {
		return a, false, nil
	}
	ok, err := fed.Known(ctx, a.Domain)
	return a, ok, err
}

// remoteKeys fetches a remote account's bundles from its cluster for the
// calling device; each carries the CA pinned for that cluster.
func (n *Node) remoteKeys(ctx context.Context, r *http.Request, c *caller, acct ident.Account) (any, error) {
	if c.account.ID < 0 {
		return nil, errorf(http.StatusNotFound, api.CodeUnknownUser, "no account %s on this cluster", acct)
	}
	q := url.Values{}
	if v := r.URL.Query().Get("consume"); v != "" {
		q.Set("consume", v)
	}
	var bs []api.Bundle
	peer, err := n.federation().Client.Get(ctx, acct.Domain, api.PathFederationKeys+"/"+url.PathEscape(acct.String()), q, c.cert.Raw, &bs)
	var ae *api.Error
	switch {
	case err == nil:
	case !errors.As(err, &ae):
		// The peer cannot be reached: the last answer it gave this account,
		// without one-time keys, lets devices with sessions send; their
		// messages wait in the queue for the peer.
		if cached, ok := n.fedKeys.get(c.account.Name, acct.String(), n.now()); ok {
			n.log.Debug("peer unreachable; its last key answer served", "domain", acct.Domain)
			return cached, nil
		}
		return nil, peerError(acct.Domain, err)
	default:
		return nil, peerError(acct.Domain, err)
	}
	out := []api.Bundle{}
	for _, b := range bs {
		if d, err := ident.ParseDevice(b.Device); err != nil || d.Account != acct {
			continue
		}
		b.CA = peer.CA
		out = append(out, b)
	}
	n.fedKeys.put(c.account.Name, acct.String(), out, n.now())
	return out, nil
}

// remoteContact is a remote account's contact entry from its cluster.
func (n *Node) remoteContact(ctx context.Context, c *caller, acct ident.Account) (api.Contact, error) {
	var e api.Contact
	if c.account.ID < 0 {
		// A peer's device asks only about this cluster's accounts.
		return e, errorf(http.StatusNotFound, api.CodeUnknownUser, "no account %s on this cluster", acct)
	}
	peer, err := n.federation().Client.Get(ctx, acct.Domain, api.PathFederationContacts+"/"+url.PathEscape(acct.String()), nil, c.cert.Raw, &e)
	if err != nil {
		return e, peerError(acct.Domain, err)
	}
	if e.User != acct.String() {
		return e, errorf(http.StatusBadGateway, api.CodeInternal, "%s answered for another account", acct.Domain)
	}
	e.CA = peer.CA
	if e.Devices == nil {
		e.Devices = []api.ContactDevice{}
	}
	return e, nil
}

// peerError passes a peer's refusal on and names an unreachable peer.
func peerError(domain string, err error) error {
	var ae *api.Error
	if errors.As(err, &ae) {
		if ae.Status == 0 {
			ae.Status = http.StatusBadGateway
		}
		return ae
	}
	return errorf(http.StatusBadGateway, api.CodePeerUnreachable, "the cluster of %s cannot be reached now: %s", domain, strings.TrimSpace(err.Error()))
}

// remoteContactAdd adds an account of a peer cluster to the caller's
// contacts once that cluster confirms the account exists.
func (n *Node) remoteContactAdd(ctx context.Context, c *caller, acct ident.Account) (any, error) {
	e, err := n.remoteContact(ctx, c, acct)
	if err != nil {
		return nil, err
	}
	if err := n.st.AddContact(ctx, c.account.ID, acct.String(), n.now()); err != nil {
		return nil, err
	}
	return e, nil
}

// contactEntryFor is contactEntry for the caller's list: a remote contact
// is read from its cluster, and shown without devices while that cluster
// cannot be reached.
func (n *Node) contactEntryFor(ctx context.Context, c *caller, name string) (api.Contact, error) {
	acct, remote, err := n.remote(ctx, name)
	if err != nil {
		return api.Contact{}, err
	}
	if !remote {
		return n.contactEntry(ctx, name)
	}
	e, err := n.remoteContact(ctx, c, acct)
	if err != nil {
		n.log.Debug("remote contact not read", "domain", acct.Domain, "err", err)
		return api.Contact{User: acct.String(), Devices: []api.ContactDevice{}}, nil
	}
	return e, nil
}
