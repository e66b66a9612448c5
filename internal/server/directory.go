package server

import (
	"context"
	"net/http"
	"time"

	"github.com/phonex/phonex/internal/dnszone"
	"github.com/phonex/phonex/internal/server/directory"
	"github.com/phonex/phonex/internal/store"
)

// openDirectory makes the directory service (docs/directory.md) and makes
// it the source of the directory zone: the zone reads the published
// entries when it starts, and every change (here, or on another node
// sharing the store, seen by the sweeper) is pushed to it.
func (n *Node) openDirectory() {
	n.dirSvc = directory.New(n.st, n.cfg.Directory, n.cfg.Domain, n.log)
	n.SetDirectorySource(dirSource{n.st})
	n.dirSvc.Changed = func(ctx context.Context, es []store.DirEntry) {
		if err := n.PublishDirectory(zoneEntries(es)); err != nil {
			n.log.Error("directory zone update failed", "err", err)
		}
	}
}

// dirSource reads the zone's entries from the store.
type dirSource struct{ st store.Directory }

func (d dirSource) DirectoryEntries(ctx context.Context) ([]dnszone.Entry, error) {
	es, err := d.st.DirEntries(ctx)
	return zoneEntries(es), err
}

func zoneEntries(es []store.DirEntry) []dnszone.Entry {
	out := make([]dnszone.Entry, len(es))
	for i, e := range es {
		keys := make([]dnszone.DeviceKey, len(e.Keys))
		for j, k := range e.Keys {
			keys[j] = dnszone.DeviceKey{Device: k.Device, Cert: k.Cert}
		}
		out[i] = dnszone.Entry{E164: e.E164, AOR: e.AOR, Keys: keys}
	}
	return out
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
