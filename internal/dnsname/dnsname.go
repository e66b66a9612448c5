// Package dnsname computes the owner names of the PhoneX directory's DNS
// records, shared by the zone that publishes them (internal/dnszone) and the
// validating resolver that looks them up (internal/dnsval):
//
//   - ENUM (RFC 6116 §2.4): the E.164 digits reversed, one per label, under
//     e164.<zone>.
//   - SMIMEA (RFC 8162 §3): SHA2-256 of the address's local part truncated
//     to 28 octets, in hex, under _smimecert.<domain>.
//   - SRV (RFC 2782) and TLSA (RFC 6698 §3): _service._proto.<name> and
//     _port._proto.<host>.
package dnsname

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Errors callers branch on.
var (
	ErrNumber  = errors.New("not an E.164 number")
	ErrAddress = errors.New("not a user@domain address")
)

// ENUMLabel is the subtree of the zone that holds the ENUM records.
const ENUMLabel = "e164"

// SMIMEALabel is the label under a domain that holds SMIMEA records.
const SMIMEALabel = "_smimecert"

// CheckE164 reports whether s is "+" and 2 to 15 digits, the first not 0
// (ITU-T E.164: at most 15 digits, country codes do not start with 0).
func CheckE164(s string) error {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] == '0' {
		return fmt.Errorf("%q: %w (want + and 2 to 15 digits)", s, ErrNumber)
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return fmt.Errorf("%q: %w (want + and 2 to 15 digits)", s, ErrNumber)
		}
	}
	return nil
}

// ENUM is the owner name of number's NAPTR records under zone: RFC 6116
// §2.4, the digits reversed and dot-separated, here under e164.<zone>
// instead of e164.arpa. so a cluster serves its own tree.
func ENUM(number, zone string) (string, error) {
	if err := CheckE164(number); err != nil {
		return "", err
	}
	d := number[1:]
	var b strings.Builder
	for i := len(d) - 1; i >= 0; i-- {
		b.WriteByte(d[i])
		b.WriteByte('.')
	}
	b.WriteString(ENUMLabel + ".")
	b.WriteString(dns.Fqdn(strings.ToLower(zone)))
	return b.String(), nil
}

// SplitAOR splits user@domain, lower-casing the domain (the local part is
// kept as given: RFC 8162 §3 hashes it as is).
func SplitAOR(aor string) (local, domain string, err error) {
	local, domain, ok := strings.Cut(aor, "@")
	if !ok || local == "" || domain == "" || strings.ContainsAny(aor, " \t\r\n!\\") || strings.Contains(domain, "@") {
		return "", "", fmt.Errorf("%q: %w", aor, ErrAddress)
	}
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if _, ok := dns.IsDomainName(domain); !ok {
		return "", "", fmt.Errorf("%q: %w", aor, ErrAddress)
	}
	return local, domain, nil
}

// SMIMEA is the owner name of aor's SMIMEA records (RFC 8162 §3).
func SMIMEA(aor string) (string, error) {
	local, domain, err := SplitAOR(aor)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256([]byte(local))
	return hex.EncodeToString(h[:28]) + "." + SMIMEALabel + "." + dns.Fqdn(domain), nil
}

// SRV is the owner name _service._proto.domain. of an SRV RRset
// (RFC 2782); service and proto are given without the underscore.
func SRV(service, proto, domain string) string {
	return "_" + strings.TrimPrefix(service, "_") + "._" + strings.TrimPrefix(proto, "_") + "." + dns.Fqdn(strings.ToLower(domain))
}

// TLSA is the owner name _port._proto.host. of a TLSA RRset (RFC 6698 §3).
func TLSA(port uint16, proto, host string) string {
	return "_" + strconv.Itoa(int(port)) + "._" + strings.TrimPrefix(proto, "_") + "." + dns.Fqdn(strings.ToLower(host))
}

// Service names of the cluster's SRV records.
const (
	ServiceSIPS  = "sips"       // SIP over TLS, RFC 3263 §4.1 (_sips._tcp)
	ServiceAPI   = "phonex-api" // the node's HTTPS API (_phonex-api._tcp)
	ServiceTURN  = "turn"       // TURN over UDP and TCP, RFC 5928 §4 (_turn._udp, _turn._tcp)
	ServiceTURNS = "turns"      // TURN over TLS, RFC 5928 §4 (_turns._tcp)
)

// SIPURIFromNAPTR extracts user@domain from an ENUM NAPTR of PhoneX's form:
// flags "u", service "E2U+sip", regexp "!^.*$!sip:USER@DOMAIN!" (RFC 6116
// §3.2, RFC 3402 §3.2 delimiter syntax). Other forms are refused rather than
// half-interpreted.
func SIPURIFromNAPTR(r *dns.NAPTR) (string, error) {
	if !strings.EqualFold(r.Flags, "u") || !strings.EqualFold(r.Service, "E2U+sip") {
		return "", fmt.Errorf("NAPTR flags %q service %q: want u and E2U+sip", r.Flags, r.Service)
	}
	re := r.Regexp
	if len(re) < 3 || re[0] != '!' || !strings.HasSuffix(re, "!") {
		return "", fmt.Errorf("NAPTR regexp %q: want !^.*$!sip:user@domain!", re)
	}
	parts := strings.Split(re[1:len(re)-1], "!")
	if len(parts) != 2 || parts[0] != "^.*$" || !strings.HasPrefix(parts[1], "sip:") {
		return "", fmt.Errorf("NAPTR regexp %q: want !^.*$!sip:user@domain!", re)
	}
	aor := parts[1][len("sip:"):]
	if _, _, err := SplitAOR(aor); err != nil {
		return "", fmt.Errorf("NAPTR regexp %q: %w", re, err)
	}
	return aor, nil
}

// NAPTRRegexp is the substitution expression of aor's ENUM NAPTR.
func NAPTRRegexp(aor string) string { return "!^.*$!sip:" + aor + "!" }
