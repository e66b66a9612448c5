package client

import (
	"context"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/phonex/phonex/internal/api"
	"github.com/phonex/phonex/internal/e164"
	"github.com/phonex/phonex/internal/ident"
)

// The number directory's private API (docs/directory.md): claiming a
// number by the code the cluster delivers to this account's devices,
// publishing its SIP address and keys, lookups that compare the keys
// with this device's pins, and discovery by hashed numbers.

// Errors of the directory, for errors.Is.
var (
	ErrNoClaim     = errors.New("no claim of this number in progress on this device; run publish without --code first")
	ErrCodeTimeout = errors.New("the claim's code did not arrive on this device in time")
)

const kvDirClaim = "dir-claim/" // dir-claim/+E164 → the claim in progress

// Key match states of a looked-up key against this device's pins.
const (
	KeyPinned    = "pinned"     // the key this device pinned for that device
	KeyMismatch  = "mismatch"   // another key than the pinned one
	KeyNotPinned = "not_pinned" // this device pinned nothing for that device
)

// DirKey is a published device key as this device judged it.
type DirKey struct {
	Device     string    `json:"device"` // user@domain/name
	KeySHA256  string    `json:"key_sha256"`
	NotAfter   time.Time `json:"not_after"`
	Match      string    `json:"match"`       // KeyPinned, KeyMismatch, KeyNotPinned
	CAVerified bool      `json:"ca_verified"` // issued by this profile's CA for that device (home cluster only)
	Problem    string    `json:"problem,omitempty"`
}

// DirEntry is a published number as this device sees it.
type DirEntry struct {
	Number     string      `json:"number"`
	SIPAddress string      `json:"sip_address"` // sip:user@domain, the NAPTR target
	AOR        string      `json:"aor"`
	Keys       []DirKey    `json:"keys"`
	Published  time.Time   `json:"published"`
	Pending    *DirPending `json:"pending,omitempty"`
	Source     string      `json:"source"` // api
}

// DirPending is a key replacement waiting out its delay.
type DirPending struct {
	Replacement string    `json:"replacement"`
	Effective   time.Time `json:"effective"`
	Keys        []DirKey  `json:"keys"`
}

// DirPublication is the result of a publish.
type DirPublication struct {
	State string   `json:"state"` // published, replacement_pending
	Entry DirEntry `json:"entry"`
}

// DirClaim is a claim begun and not yet answered.
type DirClaim struct {
	Claim   string    `json:"claim"`
	Number  string    `json:"number"`
	Devices int       `json:"devices"` // the code went to these devices of the account
	Expires time.Time `json:"expires"`
}

// BeginDirClaim asks the cluster to send a one-time code for number to
// this account's devices, and remembers the claim for ProveDirClaim.
func (p *Profile) BeginDirClaim(ctx context.Context, number string) (DirClaim, error) {
	n, err := e164.Parse(number)
	if err != nil {
		return DirClaim{}, fmt.Errorf("number %q: %w", number, err)
	}
	var b api.DirClaimBegun
	if err := p.c.call(ctx, "POST", api.PathDirClaims, api.DirClaimBegin{Number: n}, &b); err != nil {
		return DirClaim{}, fmt.Errorf("claim %s: %w", n, err)
	}
	if err := kvPut(ctx, p.db.db, kvDirClaim+n, b.Claim); err != nil {
		return DirClaim{}, err
	}
	return DirClaim(b), nil
}

// WaitDirCode waits for the code of a claim to arrive on this device.
func (p *Profile) WaitDirCode(ctx context.Context, claim string, until time.Time) (string, error) {
	for {
		ns, err := p.takeNotices(ctx, claim)
		if err != nil {
			return "", err
		}
		for _, n := range ns {
			if n.Kind == "claim_code" && n.Ref == claim {
				return n.Code, nil
			}
		}
		if !p.now().Before(until) {
			return "", ErrCodeTimeout
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// ProveDirClaim answers this device's claim of number with code.
func (p *Profile) ProveDirClaim(ctx context.Context, number, code string) (DirPublication, error) {
	n, err := e164.Parse(number)
	if err != nil {
		return DirPublication{}, fmt.Errorf("number %q: %w", number, err)
	}
	claim, ok, err := kvGet(ctx, p.db.db, kvDirClaim+n)
	if err != nil {
		return DirPublication{}, err
	}
	if !ok {
		return DirPublication{}, ErrNoClaim
	}
	code = strings.Join(strings.Fields(code), "")
	var pub api.DirPublication
	err = p.c.call(ctx, "POST", api.PathDirClaims+"/"+url.PathEscape(claim), api.DirClaimProve{Code: code}, &pub)
	var ae *api.Error
	if err == nil || (errors.As(err, &ae) && ae.Code != api.CodeCodeInvalid) {
		p.db.db.ExecContext(ctx, `DELETE FROM kv WHERE k=?`, kvDirClaim+n)
	}
	if err != nil {
		return DirPublication{}, fmt.Errorf("claim %s: %w", n, err)
	}
	e, err := p.dirEntry(ctx, pub.Entry)
	return DirPublication{State: pub.State, Entry: e}, err
}

// PublishNumber claims number and publishes it: it begins a claim, waits
// for the code to reach this device, and answers it.
func (p *Profile) PublishNumber(ctx context.Context, number string, progress func(string)) (DirPublication, error) {
	c, err := p.BeginDirClaim(ctx, number)
	if err != nil {
		return DirPublication{}, err
	}
	if progress != nil {
		progress(fmt.Sprintf("code for %s sent to %d devices of %s; waiting for it here", c.Number, c.Devices, p.Device.Account))
	}
	code, err := p.WaitDirCode(ctx, c.Claim, c.Expires)
	if err != nil {
		return DirPublication{}, err
	}
	if progress != nil {
		progress("code received; proving the claim")
	}
	return p.ProveDirClaim(ctx, c.Number, code)
}

// DirNotice is something the directory told this device.
type DirNotice = api.DirNotice

func (p *Profile) takeNotices(ctx context.Context, ref string) ([]api.DirNotice, error) {
	path := api.PathDirNotices
	if ref != "" {
		path += "?ref=" + url.QueryEscape(ref)
	}
	var ns api.DirNotices
	if err := p.c.call(ctx, "GET", path, nil, &ns); err != nil {
		return nil, fmt.Errorf("directory notices: %w", err)
	}
	return ns.Notices, nil
}

// DirNotices takes this device's directory notices: codes of claims
// (from this or another device of the account) and key replacements
// asked by another device. Each is handed out once.
func (p *Profile) DirNotices(ctx context.Context) ([]DirNotice, error) {
	return p.takeNotices(ctx, "")
}

// CancelDirReplacement withdraws a pending key replacement.
func (p *Profile) CancelDirReplacement(ctx context.Context, id string) error {
	if err := p.c.call(ctx, "DELETE", api.PathDirReplacements+"/"+url.PathEscape(id), nil, nil); err != nil {
		return fmt.Errorf("cancel replacement %s: %w", id, err)
	}
	return nil
}

// LookupDirectory finds a number (+E164) or a SIP address (user@domain)
// through the private API and compares the keys with this device's pins.
func (p *Profile) LookupDirectory(ctx context.Context, query string) ([]DirEntry, error) {
	var q api.DirLookup
	if strings.HasPrefix(strings.TrimSpace(query), "+") {
		n, err := e164.Parse(query)
		if err != nil {
			return nil, fmt.Errorf("number %q: %w", query, err)
		}
		q.Number = n
	} else {
		a, err := ident.ParseAccount(strings.TrimPrefix(query, "sip:"))
		if err != nil {
			return nil, fmt.Errorf("lookup %q: want +E164 or user@domain: %w", query, err)
		}
		q.AOR = a.String()
	}
	var res api.DirEntries
	if err := p.c.call(ctx, "POST", api.PathDirLookup, q, &res); err != nil {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	out := make([]DirEntry, 0, len(res.Entries))
	for _, e := range res.Entries {
		de, err := p.dirEntry(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, de)
	}
	return out, nil
}

// DirDiscovery is the result of a discovery.
type DirDiscovery struct {
	Found    []DirEntry `json:"found"`
	NotFound []string   `json:"not_found"`
	Invalid  []string   `json:"invalid,omitempty"` // lines that are no E.164 number
}

// DiscoverNumbers asks which of numbers are published, sending only their
// discovery hashes, api.MaxDiscover at a time. progress, when set, gets
// the numbers done.
func (p *Profile) DiscoverNumbers(ctx context.Context, numbers []string, progress func(done, total int)) (DirDiscovery, error) {
	out := DirDiscovery{Found: []DirEntry{}, NotFound: []string{}}
	byHash := map[string]string{}
	var hashes [][]byte
	for _, s := range numbers {
		n, err := e164.Parse(s)
		if err != nil {
			out.Invalid = append(out.Invalid, s)
			continue
		}
		h := e164.Hash(n)
		if _, dup := byHash[string(h)]; dup {
			continue
		}
		byHash[string(h)] = n
		hashes = append(hashes, h)
	}
	found := map[string]bool{}
	for i := 0; i < len(hashes); i += api.MaxDiscover {
		batch := hashes[i:min(i+api.MaxDiscover, len(hashes))]
		var res api.DirDiscovered
		if err := p.c.call(ctx, "POST", api.PathDirDiscover, api.DirDiscover{Hashes: batch}, &res); err != nil {
			return out, fmt.Errorf("discover (%d of %d numbers done): %w", i, len(hashes), err)
		}
		for _, m := range res.Matches {
			n, ok := byHash[string(m.Hash)]
			if !ok || m.Number != n {
				return out, fmt.Errorf("discover: the cluster answered a number not asked for")
			}
			e, err := p.dirEntry(ctx, m.DirEntry)
			if err != nil {
				return out, err
			}
			out.Found = append(out.Found, e)
			found[n] = true
		}
		if progress != nil {
			progress(i+len(batch), len(hashes))
		}
	}
	for _, h := range hashes {
		if n := byHash[string(h)]; !found[n] {
			out.NotFound = append(out.NotFound, n)
		}
	}
	return out, nil
}

func (p *Profile) dirEntry(ctx context.Context, e api.DirEntry) (DirEntry, error) {
	out := DirEntry{Number: e.Number, SIPAddress: "sip:" + e.AOR, AOR: e.AOR, Published: e.Published, Source: "api"}
	var err error
	if out.Keys, err = p.dirKeys(ctx, e.AOR, e.Keys); err != nil {
		return out, err
	}
	if e.Pending != nil {
		ks, err := p.dirKeys(ctx, e.AOR, e.Pending.Keys)
		if err != nil {
			return out, err
		}
		out.Pending = &DirPending{Replacement: e.Pending.Replacement, Effective: e.Pending.Effective, Keys: ks}
	}
	return out, nil
}

// dirKeys judges published certificates: issued by this profile's CA for
// that device (when the account is of the home cluster), and the same key
// as the one this device pinned for it.
func (p *Profile) dirKeys(ctx context.Context, aor string, keys []api.DirKey) ([]DirKey, error) {
	out := make([]DirKey, 0, len(keys))
	home := p.Device.Account.Domain
	for _, k := range keys {
		dk := DirKey{Device: aor + "/" + k.Device, Match: KeyNotPinned}
		cert, err := x509.ParseCertificate(k.Cert)
		if err != nil {
			dk.Problem = "certificate does not parse: " + err.Error()
			out = append(out, dk)
			continue
		}
		dk.KeySHA256, dk.NotAfter = keySHA(cert), cert.NotAfter.UTC()
		if strings.HasSuffix(aor, "@"+home) {
			if _, err := verifyContactDevice(p.CA, aor, api.ContactDevice{Name: k.Device, Cert: k.Cert}, p.now()); err != nil {
				dk.Problem = err.Error()
			} else {
				dk.CAVerified = true
			}
		}
		var pinned string
		err = p.db.db.QueryRowContext(ctx, `SELECT cert_sha FROM pins WHERE device=?`, dk.Device).Scan(&pinned)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, err
		case pinned == dk.KeySHA256:
			dk.Match = KeyPinned
		default:
			dk.Match = KeyMismatch
		}
		out = append(out, dk)
	}
	return out, nil
}
