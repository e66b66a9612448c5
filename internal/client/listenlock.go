package client

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrListening is a second 'phonex listen' on a profile that is already
// listening: the cluster keeps one binding per device, so the second would
// silently take the first one's messages away.
var ErrListening = errors.New("this profile is already listening in another process")

const listenLockFile = "listen.lock"

// lockListen takes the profile's listen lock (flock, released by the
// kernel when the process ends, however it ends).
func (p *Profile) lockListen() (release func(), err error) {
	path := filepath.Join(p.Dir, listenLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("listen lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s): stop it first, or use another device profile", ErrListening, p.Dir)
		}
		return nil, fmt.Errorf("listen lock %s: %w", path, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
