package server

import (
	"context"
	"net/http"
	"time"

	"github.com/phonex/phonex/internal/server/directory"
)

// openDirectory makes the directory service (docs/directory.md).
func (n *Node) openDirectory() {
	n.dirSvc = directory.New(n.st, n.cfg.Directory, n.cfg.Domain, n.log)
}

// directoryRoutes adds the directory's private API, authenticated as every
// device call.
func (n *Node) directoryRoutes(m *http.ServeMux) {
	n.dirSvc.Routes(m, func(r *http.Request) (directory.Caller, error) {
		c, err := n.authenticate(r)
		if err != nil {
			return directory.Caller{}, err
		}
		return directory.Caller{AccountID: c.account.ID, Account: c.account.Name, DeviceID: c.device.ID, Device: c.device.Name}, nil
	})
}

// sweepDirectory publishes replacements whose delay passed and forgets
// expired claims until ctx ends. Lookups publish a due replacement
// themselves, so the interval bounds only the zone's lag.
func (n *Node) sweepDirectory(ctx context.Context) {
	every := min(time.Minute, max(n.cfg.Directory.ReplaceDelay/4, 100*time.Millisecond))
	n.dirSvc.Run(ctx, every)
}
