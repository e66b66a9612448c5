//go:build unix

package server

import "syscall"

// raiseFileLimit lifts the soft limit on open files to the hard limit, where
// the system allows it, and returns the limits in force afterwards. (Go's
// runtime does the same on Linux at start; doing it here makes it explicit
// on every system and gives the figures to log.)
func raiseFileLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return uint64(l.Cur), uint64(l.Max), err
		}
		l = want
	}
	return uint64(l.Cur), uint64(l.Max), nil
}
