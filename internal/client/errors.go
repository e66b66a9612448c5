// Package client is the device side of PhoneX: the profile directory
// (keystore, encrypted database, settings), enrollment, the hardened unlock,
// and the calls to the home cluster. The public SDK and the phonex command
// are built on it.
package client

import "errors"

// Errors a caller branches on.
var (
	ErrNoProfile      = errors.New("no PhoneX profile here")
	ErrProfileExists  = errors.New("a PhoneX profile already exists here")
	ErrWrongPassword  = errors.New("wrong password")
	ErrTampered       = errors.New("profile file damaged or tampered with")
	ErrUnreachable    = errors.New("cannot reach the server")
	ErrCAMismatch     = errors.New("the server's CA does not match the fingerprint given")
	ErrNoPassword     = errors.New("no password given")
	ErrPasswordFormat = errors.New("password too short (at least 8 characters)")
	ErrNotCA          = errors.New("the pinned certificate is not a CA certificate (give the cluster's ca.pem, not the server's certificate)")
	ErrNotEnrolled    = errors.New("account not enrolled yet")
	ErrWeakKDF        = errors.New("the server asks for password KDF parameters weaker than this device accepts")
)
