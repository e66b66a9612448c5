package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/server/files"
)

// filePeers lets the file service reach peers' nodes over the node link
// (docs/federation.md, "Files").
type filePeers struct{ n *Node }

func (p filePeers) Known(ctx context.Context, domain string) (bool, error) {
	return p.n.federation().Known(ctx, domain)
}

func (p filePeers) Do(ctx context.Context, domain, method, path string, cert []byte, hdr http.Header, body []byte, out any) (http.Header, error) {
	fed := p.n.federation()
	if fed == nil {
		return http.Header{}, errors.New("federation disabled: no node certificate")
	}
	return fed.Client.Do(ctx, domain, method, path, cert, hdr, body, out)
}

// federatedFileRoutes are the file calls of peers' nodes, for their
// devices: the node's and the device's certificates are checked against
// the CA pinned for the node's domain (peerCaller).
func (n *Node) federatedFileRoutes(m *http.ServeMux) {
	if n.files == nil {
		return
	}
	n.files.PeerRoutes(m, func(r *http.Request) (files.Caller, error) {
		c, err := n.peerCaller(r)
		if err != nil {
			return files.Caller{}, err
		}
		if c.account.ID >= 0 {
			return files.Caller{}, errorf(http.StatusForbidden, api.CodeNotAllowed, "only peers' nodes call this")
		}
		return files.Caller{AccountID: c.account.ID, Account: c.id.Account.String(), DeviceID: c.device.ID, Device: c.id.Name,
			Cert: c.cert.Raw, Remote: true, Origin: c.id.Account.Domain}, nil
	})
}
