package store

import "errors"

// ErrStaleRoute refuses a message stored with Message.RouteGeneration set
// when what routing reads (accounts, their status, active devices, contact
// lists) changed since that generation: the caller decides again from the
// store.
var ErrStaleRoute = errors.New("routing facts changed since they were read")
