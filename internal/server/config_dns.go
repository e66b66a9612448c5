package server

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNSConfig is the directory zone's section of the configuration
// (docs/dns.md).
type DNSConfig struct {
	Addr      string // UDP and TCP listener of the authoritative server; empty: off
	Zone      string // the zone's apex; empty: the cluster's domain
	Algorithm string // ecdsap256sha256 (13) or ed25519 (15), for keys made by init
	KSKFile   string // key files (base name, .key and .private), relative to the data directory
	ZSKFile   string
	// ZSKLifetime is the age at which the running node rolls the ZSK over
	// (dns_rollover.go); 0: never.
	ZSKLifetime time.Duration
	// RateLimit is the UDP answers per second to one source network (IPv4
	// /24, IPv6 /56) before answers are truncated or dropped; 0: no limit.
	RateLimit float64
}

func dnsDefaults() DNSConfig {
	return DNSConfig{Algorithm: "ecdsap256sha256", KSKFile: "dns-ksk", ZSKFile: "dns-zsk", ZSKLifetime: 90 * 24 * time.Hour, RateLimit: 100}
}

// ZoneName is the zone's apex, fully qualified.
func (c Config) ZoneName() string {
	if c.DNS.Zone != "" {
		return dns.CanonicalName(c.DNS.Zone)
	}
	return dns.CanonicalName(c.Domain)
}

// dnsAlgorithm is the DNSSEC algorithm number of the configured name.
func (d DNSConfig) algorithm() (uint8, error) {
	switch strings.ToLower(d.Algorithm) {
	case "ecdsap256sha256", "13":
		return dns.ECDSAP256SHA256, nil
	case "ed25519", "15":
		return dns.ED25519, nil
	}
	return 0, fmt.Errorf("dns_algorithm %q: use ecdsap256sha256 or ed25519", d.Algorithm)
}

func (d DNSConfig) validate() error {
	var errs []error
	if d.Addr != "" {
		if _, _, err := net.SplitHostPort(d.Addr); err != nil {
			errs = append(errs, fmt.Errorf("dns_addr %q: %w", d.Addr, err))
		}
	}
	if d.Zone != "" {
		if _, ok := dns.IsDomainName(d.Zone); !ok {
			errs = append(errs, fmt.Errorf("dns_zone %q: not a domain name", d.Zone))
		}
	}
	if _, err := d.algorithm(); err != nil {
		errs = append(errs, err)
	}
	if d.ZSKLifetime != 0 && d.ZSKLifetime < 3*time.Hour {
		errs = append(errs, fmt.Errorf("dns_zsk_lifetime %v: 0 (never) or at least 3h (a rollover takes two hours)", d.ZSKLifetime))
	}
	if d.RateLimit < 0 {
		errs = append(errs, fmt.Errorf("dns_rate_limit %g: 0 (none) or more", d.RateLimit))
	}
	if d.KSKFile == "" || d.ZSKFile == "" || d.KSKFile == d.ZSKFile {
		errs = append(errs, errors.New("dns_ksk_file and dns_zsk_file: two different names"))
	}
	return errors.Join(errs...)
}

func (d DNSConfig) encode(b *bytes.Buffer) {
	fmt.Fprintf(b, "\n# Directory zone (docs/dns.md): a DNSSEC-signed authoritative server on dns_addr,\n# UDP and TCP (empty: off), for the zone dns_zone (empty: the domain) with ENUM,\n# SMIMEA, SRV and TLSA records. 'phonexd init' makes the keys (dns_algorithm:\n# ecdsap256sha256 or ed25519) in dns_ksk_file and dns_zsk_file (.key and .private);\n# 'phonexd dns ds' prints the DS record for the parent zone. The running node rolls\n# the ZSK over by pre-publication when it is older than dns_zsk_lifetime (0: never).\n# dns_rate_limit: UDP answers per second to one source network (/24, /56) before\n# answers are truncated (every second one, so clients retry over TCP) or dropped;\n# it keeps the signed zone from being used as an amplifier (0: no limit).\n")
	fmt.Fprintf(b, "dns_addr = %s\ndns_zone = %s\ndns_algorithm = %s\ndns_ksk_file = %s\ndns_zsk_file = %s\ndns_zsk_lifetime = %s\ndns_rate_limit = %g\n",
		d.Addr, d.Zone, d.Algorithm, d.KSKFile, d.ZSKFile, d.ZSKLifetime, d.RateLimit)
}

// parse sets the setting k if it belongs to the zone; ok is false if not.
func (d *DNSConfig) parse(k, v string) (ok bool, err error) {
	switch k {
	case "dns_addr":
		d.Addr = v
	case "dns_zone":
		d.Zone = strings.ToLower(v)
	case "dns_algorithm":
		d.Algorithm = v
	case "dns_ksk_file":
		d.KSKFile = v
	case "dns_zsk_file":
		d.ZSKFile = v
	case "dns_zsk_lifetime":
		d.ZSKLifetime, err = time.ParseDuration(v)
	case "dns_rate_limit":
		d.RateLimit, err = strconv.ParseFloat(v, 64)
	default:
		return false, nil
	}
	return true, err
}
