// Package ident parses and checks PhoneX identities: accounts (user@domain)
// and devices (user@domain/device), and their form in certificates.
package ident

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalid is returned for a malformed account or device name.
var ErrInvalid = errors.New("invalid identity")

// URIScheme is the scheme of the URI SAN that names a device in its certificate:
// phonex:alpha@example.org/laptop.
const URIScheme = "phonex"

// Account is user@domain, lower-cased.
type Account struct {
	User   string
	Domain string
}

// Device is an account plus a device name.
type Device struct {
	Account
	Name string
}

func (a Account) String() string { return a.User + "@" + a.Domain }

func (d Device) String() string { return d.Account.String() + "/" + d.Name }

// URI is the device's URI SAN.
func (d Device) URI() *url.URL { return &url.URL{Scheme: URIScheme, Opaque: d.String()} }

// ParseAccount parses user@domain. Users are 1-64 of [a-z0-9._-]; domains are
// DNS names (letters, digits, hyphens, dots) or "localhost".
func ParseAccount(s string) (Account, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	user, domain, ok := strings.Cut(s, "@")
	if !ok {
		return Account{}, fmt.Errorf("%w: %q is not user@domain", ErrInvalid, s)
	}
	if err := checkLabel(user, 64, "user"); err != nil {
		return Account{}, err
	}
	if err := CheckDomain(domain); err != nil {
		return Account{}, err
	}
	return Account{User: user, Domain: domain}, nil
}

// ParseDevice parses user@domain/device.
func ParseDevice(s string) (Device, error) {
	acct, name, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Device{}, fmt.Errorf("%w: %q is not user@domain/device", ErrInvalid, s)
	}
	a, err := ParseAccount(acct)
	if err != nil {
		return Device{}, err
	}
	name = strings.ToLower(name)
	if err := CheckDeviceName(name); err != nil {
		return Device{}, err
	}
	return Device{Account: a, Name: name}, nil
}

// CheckDeviceName accepts 1-32 of [a-z0-9._-].
func CheckDeviceName(name string) error { return checkLabel(name, 32, "device name") }

// CheckDomain accepts a lower-case DNS name.
func CheckDomain(d string) error {
	if d == "" || len(d) > 253 {
		return fmt.Errorf("%w: domain %q", ErrInvalid, d)
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%w: domain %q", ErrInvalid, d)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%w: domain %q", ErrInvalid, d)
			}
		}
	}
	return nil
}

func checkLabel(s string, max int, what string) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%w: %s must be 1 to %d characters", ErrInvalid, what, max)
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s %q may hold only a-z, 0-9, '.', '_' and '-'", ErrInvalid, what, s)
		}
	}
	return nil
}

// FromURIs finds the device identity among a certificate's URI SANs. Exactly
// one phonex: URI must be present.
func FromURIs(uris []*url.URL) (Device, error) {
	var found []Device
	for _, u := range uris {
		if u == nil || u.Scheme != URIScheme {
			continue
		}
		d, err := ParseDevice(u.Opaque)
		if err != nil {
			return Device{}, err
		}
		found = append(found, d)
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return Device{}, fmt.Errorf("%w: no %s: URI in certificate", ErrInvalid, URIScheme)
	default:
		return Device{}, fmt.Errorf("%w: several %s: URIs in certificate", ErrInvalid, URIScheme)
	}
}
