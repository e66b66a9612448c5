package server

import (
	"context"
	"net/http"
	"path/filepath"
	"time"

	"github.com/phonex/phonex/internal/server/files"
)

// FilesDir holds files' ciphertext inside the data directory.
const FilesDir = "files"

// openFiles makes the file service on the local filesystem.
func (n *Node) openFiles() error {
	fs, err := files.NewFSStore(filepath.Join(n.cfg.DataDir, FilesDir))
	if err != nil {
		return err
	}
	n.files = files.New(n.st, fs, n.cfg.Files, n.cfg.Domain, n.log)
	n.files.SetSenderPolicy(n.fileLimits)
	n.files.SetPeers(filePeers{n}) // federation_files.go
	return nil
}

// fileRoutes adds the file API, authenticated as every device call.
func (n *Node) fileRoutes(m *http.ServeMux) {
	n.files.Routes(m, func(r *http.Request) (files.Caller, error) {
		c, err := n.authenticate(r)
		if err != nil {
			return files.Caller{}, err
		}
		return files.Caller{AccountID: c.account.ID, Account: c.account.Name, DeviceID: c.device.ID, Device: c.device.Name, Cert: c.cert.Raw}, nil
	})
}

// sweepFiles deletes expired files and slots until ctx ends. Expiry is
// also checked on every access, so the interval bounds only how long
// expired content stays on disk.
func (n *Node) sweepFiles(ctx context.Context) {
	every := min(time.Minute, n.cfg.Files.Expiry/2)
	go n.files.RunForwards(ctx) // federation_files.go
	n.files.Run(ctx, max(every, 100*time.Millisecond))
}
