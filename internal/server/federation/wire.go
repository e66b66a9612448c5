package federation

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Headers a node adds to a request it forwards to a peer. The device
// certificate lets the receiving cluster check the sending device against
// the CA pinned for the sender's domain; the origin id lets it drop a
// forward repeated after its answer was lost.
const (
	HeaderDeviceCert = "X-PhoneX-Device-Cert" // base64 (RFC 4648 §4) of the DER
	HeaderOriginID   = "X-PhoneX-Origin-Id"   // decimal, > 0
)

// maxCertLen bounds a forwarded device certificate (DER); PhoneX device
// certificates are well under 2 KiB, RSA ones under 4 KiB.
const maxCertLen = 8 << 10

// Errors of the forwarded headers.
var (
	ErrNoHeader  = errors.New("forwarded request lacks a federation header")
	ErrBadHeader = errors.New("malformed federation header")
)

// EncodeCert renders a certificate's DER for HeaderDeviceCert.
func EncodeCert(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// ParseCert reads HeaderDeviceCert's value back into DER. It does not
// parse the certificate.
func ParseCert(v string) ([]byte, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, fmt.Errorf("%s: %w", HeaderDeviceCert, ErrNoHeader)
	}
	if base64.StdEncoding.DecodedLen(len(v)) > maxCertLen {
		return nil, fmt.Errorf("%s: %w: too long", HeaderDeviceCert, ErrBadHeader)
	}
	der, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(der) == 0 {
		return nil, fmt.Errorf("%s: %w", HeaderDeviceCert, ErrBadHeader)
	}
	return der, nil
}

// ParseOriginID reads HeaderOriginID's value.
func ParseOriginID(v string) (int64, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("%s: %w", HeaderOriginID, ErrNoHeader)
	}
	if len(v) > 19 {
		return 0, fmt.Errorf("%s: %w", HeaderOriginID, ErrBadHeader)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || v[0] == '+' {
		return 0, fmt.Errorf("%s: %w", HeaderOriginID, ErrBadHeader)
	}
	return n, nil
}
