// Package wire holds the protobuf schemas of the PhoneX message protocol
// (messaging protocol draft v2: envelope, secure transport protocols and
// application messages) and the Go code generated from them.
//
// The schemas use proto2 so that every field has explicit presence: the
// signed and MACed bytes of the STPs are serialisations of these messages,
// and a field set to zero must still appear in them.
//
// Regenerate with `go generate ./internal/wire/` (needs protoc and
// protoc-gen-go on PATH, see docs/message-protocol.md).
package wire

//go:generate sh -c "PATH=\"$PATH:$(go env GOPATH)/bin\" protoc --go_out=. --go_opt=paths=source_relative stp.proto amp.proto"
