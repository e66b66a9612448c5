package server

import (
	"bytes"
	"fmt"
	"strconv"
)

// encodeSIPTLS writes sip_tls_takeover (docs/tls-records.md).
func (c Config) encodeSIPTLS(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n# TLS 1.3 SIP connections: after crypto/tls's handshake, internal/tlsrecord\n# carries the records (less memory per idle connection); false leaves every\n# connection with crypto/tls. TLS 1.2 connections always stay with crypto/tls.\n")
	fmt.Fprintf(b, "sip_tls_takeover = %t\n", c.SIPTLSTakeover)
}

// parseSIPTLS sets sip_tls_takeover; ok is false for any other key.
func (c *Config) parseSIPTLS(k, v string) (ok bool, err error) {
	if k != "sip_tls_takeover" {
		return false, nil
	}
	c.SIPTLSTakeover, err = strconv.ParseBool(v)
	return true, err
}
