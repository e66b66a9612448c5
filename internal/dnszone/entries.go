package dnszone

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/phonex/phonex/internal/dnsname"
)

// The directory gives the zone its whole list of entries at every change.
// SetEntries compares the list with the previous one in a linear scan that
// neither parses, hashes nor allocates per unchanged entry, and rebuilds
// only the owner names of the entries that changed: the number's NAPTR
// name and the address's SMIMEA name.

// entKey identifies an entry as given: its number and address.
type entKey struct{ e164, aor string }

// entRec is what the zone made of the entries with one key (usually one).
type entRec struct {
	entries []Entry
	name    string // the number's ENUM owner name, "" without a number
	aor     string // local@domain, domain lower case
	owner   string // the address's SMIMEA owner name, "" without keys

	gen  uint64 // the diff that last saw the key
	seen int    // entries matched in that diff
}

// entryIndex holds the entries last published and, per owner name, the
// keys whose records live there.
type entryIndex struct {
	gen     uint64
	recs    map[entKey]*entRec
	byName  map[string]map[entKey]struct{} // NAPTR owner → keys
	byOwner map[string]map[entKey]struct{} // SMIMEA owner → keys
}

func sameEntry(a, b *Entry) bool {
	if a.E164 != b.E164 || a.AOR != b.AOR || len(a.Keys) != len(b.Keys) {
		return false
	}
	for i := range a.Keys {
		if a.Keys[i].Device != b.Keys[i].Device || !bytes.Equal(a.Keys[i].Cert, b.Keys[i].Cert) {
			return false
		}
	}
	return true
}

// diff returns the keys whose entries differ from the last published ones,
// each with its new entries (none: removed).
func (x *entryIndex) diff(entries []Entry) map[entKey][]Entry {
	x.gen++
	var changed map[entKey][]Entry
	mark := func(k entKey) {
		if changed == nil {
			changed = map[entKey][]Entry{}
		}
		changed[k] = nil
	}
	full := 0 // keys whose entries all came, unchanged, so far
	for i := range entries {
		e := &entries[i]
		k := entKey{e.E164, e.AOR}
		r := x.recs[k]
		if r == nil {
			mark(k)
			continue
		}
		if r.gen != x.gen {
			r.gen, r.seen = x.gen, 0
		}
		if r.seen < len(r.entries) && sameEntry(&r.entries[r.seen], e) {
			if r.seen++; r.seen == len(r.entries) {
				full++
			}
		} else {
			if r.seen == len(r.entries) {
				full--
			}
			r.seen = len(r.entries) + 1
			mark(k)
		}
	}
	// Keys missing from the list, or with fewer entries: only when not
	// every key came whole is the index walked.
	if full != len(x.recs) {
		for k, r := range x.recs {
			if r.gen != x.gen || r.seen != len(r.entries) {
				mark(k)
			}
		}
	}
	if changed == nil {
		return nil
	}
	for i := range entries {
		k := entKey{entries[i].E164, entries[i].AOR}
		if es, ok := changed[k]; ok {
			changed[k] = append(es, cloneEntry(entries[i]))
		}
	}
	return changed
}

// cloneEntry copies what the zone keeps of an entry, so that the caller
// may reuse its slices.
func cloneEntry(e Entry) Entry {
	keys := make([]DeviceKey, len(e.Keys))
	for i, k := range e.Keys {
		keys[i] = DeviceKey{Device: k.Device, Cert: bytes.Clone(k.Cert)}
	}
	e.Keys = keys
	return e
}

// prepare checks the new entries of a key and names their owners.
func prepare(origin string, k entKey, es []Entry) (*entRec, error) {
	local, domain, err := dnsname.SplitAOR(k.aor)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrEntry, err)
	}
	r := &entRec{entries: es, aor: local + "@" + domain}
	if k.e164 != "" {
		name, err := dnsname.ENUM(k.e164, origin)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrEntry, err)
		}
		r.name = dns.CanonicalName(name)
	}
	for _, e := range es {
		if len(e.Keys) == 0 {
			continue
		}
		if r.owner == "" {
			if r.owner, err = dnsname.SMIMEA(r.aor); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrEntry, err)
			}
			r.owner = dns.CanonicalName(r.owner)
			if !dns.IsSubDomain(origin, r.owner) {
				return nil, fmt.Errorf("%w: keys of %s: %s: %w", ErrEntry, r.aor, r.owner, ErrOutsideZone)
			}
		}
		for _, dk := range e.Keys {
			if _, err := x509.ParseCertificate(dk.Cert); err != nil {
				return nil, fmt.Errorf("%w: certificate of %s/%s: %w", ErrEntry, r.aor, dk.Device, err)
			}
		}
	}
	return r, nil
}

// entryChange is a checked change of the entries: the new records of
// every owner name it touches (type → records; an empty map: no entry
// records left there) and how to commit it to the index.
type entryChange struct {
	recs  map[entKey]*entRec // nil: removed
	names map[string]map[uint16][]dns.RR
}

// change works out the records of every owner name the changed keys touch,
// from the entries that will be published there. It changes nothing.
func (x *entryIndex) change(origin string, changed map[entKey][]Entry, current func(name string) map[uint16][]dns.RR) (*entryChange, error) {
	c := &entryChange{recs: make(map[entKey]*entRec, len(changed)), names: map[string]map[uint16][]dns.RR{}}
	naptr, smimea := map[string][]entKey{}, map[string][]entKey{} // touched owner → changed keys now there
	touch := func(m map[string][]entKey, name string, k entKey, now bool) {
		if name == "" {
			return
		}
		if now {
			m[name] = append(m[name], k)
		} else if _, ok := m[name]; !ok {
			m[name] = nil
		}
	}
	for k, es := range changed {
		var r *entRec
		if len(es) > 0 {
			var err error
			if r, err = prepare(origin, k, es); err != nil {
				return nil, err
			}
		}
		c.recs[k] = r
		if old := x.recs[k]; old != nil {
			touch(naptr, old.name, k, false)
			touch(smimea, old.owner, k, false)
		}
		if r != nil {
			touch(naptr, r.name, k, true)
			touch(smimea, r.owner, k, true)
		}
	}
	// The records at a touched name: from the unchanged keys there and
	// the changed keys now there.
	there := func(idx map[string]map[entKey]struct{}, name string, now []entKey, f func(*entRec) error) error {
		for k := range idx[name] {
			if _, ok := c.recs[k]; !ok {
				if err := f(x.recs[k]); err != nil {
					return err
				}
			}
		}
		for _, k := range now {
			if err := f(c.recs[k]); err != nil {
				return err
			}
		}
		return nil
	}
	types := func(name string) map[uint16][]dns.RR {
		if t, ok := c.names[name]; ok {
			return t
		}
		t := map[uint16][]dns.RR{}
		for typ, rrs := range current(name) {
			t[typ] = rrs
		}
		c.names[name] = t
		return t
	}
	for name, now := range naptr {
		var aor string
		err := there(x.byName, name, now, func(r *entRec) error {
			if aor != "" && aor != r.aor {
				return fmt.Errorf("%w: %s is published for both %s and %s", ErrEntry, r.entries[0].E164, aor, r.aor)
			}
			aor = r.aor
			return nil
		})
		if err != nil {
			return nil, err
		}
		t := types(name)
		delete(t, dns.TypeNAPTR)
		if aor != "" {
			// RFC 6116 §3.4: order, preference, flags "u" (terminal, the
			// result is a URI), service E2U+sip (RFC 3764).
			t[dns.TypeNAPTR] = []dns.RR{&dns.NAPTR{Hdr: hdr(name, dns.TypeNAPTR, DataTTL), Order: 100, Preference: 10, Flags: "u",
				Service: "E2U+sip", Regexp: dnsname.NAPTRRegexp(aor), Replacement: "."}}
		}
	}
	for owner, now := range smimea {
		seen := map[string]bool{}
		var rrs []dns.RR
		there(x.byOwner, owner, now, func(r *entRec) error {
			for _, e := range r.entries {
				for _, k := range e.Keys {
					h := strings.ToUpper(hex.EncodeToString(k.Cert))
					if seen[h] {
						continue
					}
					seen[h] = true
					// RFC 8162 §2 with RFC 6698 §2.1: usage 3 (DANE-EE:
					// this very certificate), selector 0 (full
					// certificate), matching 0 (the certificate itself).
					rrs = append(rrs, &dns.SMIMEA{Hdr: hdr(owner, dns.TypeSMIMEA, DataTTL), Usage: 3, Selector: 0, MatchingType: 0, Certificate: h})
				}
			}
			return nil
		})
		t := types(owner)
		delete(t, dns.TypeSMIMEA)
		if len(rrs) > 0 {
			t[dns.TypeSMIMEA] = rrs
		}
	}
	return c, nil
}

// commit makes the change the index's state.
func (x *entryIndex) commit(c *entryChange) {
	if x.recs == nil {
		x.recs, x.byName, x.byOwner = map[entKey]*entRec{}, map[string]map[entKey]struct{}{}, map[string]map[entKey]struct{}{}
	}
	unlink := func(idx map[string]map[entKey]struct{}, name string, k entKey) {
		if name == "" {
			return
		}
		delete(idx[name], k)
		if len(idx[name]) == 0 {
			delete(idx, name)
		}
	}
	link := func(idx map[string]map[entKey]struct{}, name string, k entKey) {
		if name == "" {
			return
		}
		if idx[name] == nil {
			idx[name] = map[entKey]struct{}{}
		}
		idx[name][k] = struct{}{}
	}
	for k, r := range c.recs {
		if old := x.recs[k]; old != nil {
			unlink(x.byName, old.name, k)
			unlink(x.byOwner, old.owner, k)
		}
		if r == nil {
			delete(x.recs, k)
			continue
		}
		x.recs[k] = r
		link(x.byName, r.name, k)
		link(x.byOwner, r.owner, k)
	}
}
