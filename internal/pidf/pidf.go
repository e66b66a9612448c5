// Package pidf is the presence document PhoneX exchanges over SIP SIMPLE:
// PIDF (RFC 3863) with the data model of RFC 4479 and RPID activities
// (RFC 4480). Each device of an account is one tuple; PhoneX adds, in its
// own namespace inside each tuple, the device's state, its capability
// strings and a short hash and not-before time of its certificate, so that
// a watcher notices a new or renewed device and picks the best common
// protocol. Standard SIP phones read the basic status, the notes and the
// person's activities and ignore the rest (RFC 3863 §4.1.5).
package pidf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ContentType is the SIP body type of a PIDF document (RFC 3863 §3).
const ContentType = "application/pidf+xml"

// Namespaces.
const (
	NSPIDF   = "urn:ietf:params:xml:ns:pidf"
	NSDM     = "urn:ietf:params:xml:ns:pidf:data-model"
	NSRPID   = "urn:ietf:params:xml:ns:pidf:rpid"
	NSPhoneX = "urn:phonex:params:xml:ns:pidf"
)

// State is what a device or an account shows.
type State string

// States, from the most available down. OnCall is set by the cluster while
// a device is in a call it routes; Offline is what a watcher sees of a
// device that is not connected, or is invisible.
const (
	Online    State = "online"
	Away      State = "away"
	Busy      State = "busy"
	DND       State = "dnd"
	OnCall    State = "oncall"
	Offline   State = "offline"
	Invisible State = "invisible" // chosen by the user; never sent to watchers
)

// rank orders the states a user can show from the most available: the
// account shows its most available device (RFC 4479 §3.4 leaves the
// composition policy to the presence agent).
var rank = map[State]int{Online: 5, Away: 4, Busy: 3, DND: 2, Offline: 0}

// ParseState reads a state a user may choose.
func ParseState(s string) (State, error) {
	switch st := State(strings.ToLower(strings.TrimSpace(s))); st {
	case Online, Away, Busy, DND, Invisible:
		return st, nil
	}
	return "", fmt.Errorf("presence state %q: want online, away, busy, dnd or invisible: %w", s, ErrBadState)
}

// Limits of what a parsed document may hold: one tuple per device, and
// room for notes a person types.
const (
	MaxSize     = 64 << 10
	MaxTuples   = 64
	MaxNote     = 256 // bytes
	MaxCaps     = 32
	MaxCap      = 32 // bytes of one capability string
	CertHashLen = 16 // hex digits: the first 64 bits of SHA-256 of the certificate's key
)

// Errors callers branch on.
var (
	ErrMalformed = errors.New("pidf: malformed document")
	ErrTooLarge  = errors.New("pidf: document over the limits")
	ErrBadState  = errors.New("pidf: unknown state")
)

// Tuple is one device. Invisible appears only in the document an account's
// own devices see; watchers see no tuple for such a device.
type Tuple struct {
	Device        string // device name, [a-z0-9._-]
	State         State  // Offline when the basic status is closed
	Note          string
	Since         time.Time // RFC 3863 §4.1.7 timestamp: since when the state holds
	Caps          []string  // capability strings, "3.1.x" for messaging
	CertHash      string    // CertHashLen lowercase hex digits
	CertNotBefore time.Time
}

// Document is one account's presence.
type Document struct {
	Entity string // pres:user@domain
	Tuples []Tuple
}

// Account is what a watcher shows for an account: its most available
// device's state and note, on a call while any device is, and the devices
// that are online.
type Account struct {
	State   State
	Note    string
	Since   time.Time
	Devices []string // online devices, sorted
}

// Aggregate composes the account's state from its tuples.
func (d *Document) Aggregate() Account {
	out := Account{State: Offline, Devices: []string{}}
	best := -1
	oncall := false
	for _, t := range d.Tuples {
		if t.State == Offline || t.State == Invisible {
			continue
		}
		out.Devices = append(out.Devices, t.Device)
		if t.State == OnCall {
			oncall = true
			continue
		}
		r := rank[t.State]
		if r > best || (r == best && t.Since.After(out.Since)) {
			best, out.State, out.Note, out.Since = r, t.State, t.Note, t.Since
		}
	}
	if oncall {
		// On a call while any device is (the rule), whatever the
		// other devices show.
		out.State = OnCall
		for _, t := range d.Tuples {
			if t.State == OnCall && (out.Since.IsZero() || t.Since.Before(out.Since)) {
				out.Since = t.Since
			}
		}
	}
	slices.Sort(out.Devices)
	return out
}

var (
	deviceRE = regexp.MustCompile(`^[a-z0-9._-]{1,32}$`)
	hashRE   = regexp.MustCompile(`^[0-9a-f]{16}$`)
	capRE    = regexp.MustCompile(`^[0-9A-Za-z._+-]{1,32}$`)
)

// rpidActivity is the RPID activity (RFC 4480 §3.2) shown to standard
// phones for a state; PhoneX's own element carries the exact state.
func rpidActivity(s State) string {
	switch s {
	case Away:
		return "away"
	case Busy, DND:
		return "busy"
	case OnCall:
		return "on-the-phone"
	}
	return ""
}

func fromActivity(a string) State {
	switch a {
	case "away", "vacation", "holiday", "sleeping", "travel", "permanent-absence", "meal", "breakfast", "dinner":
		return Away
	case "busy", "meeting", "appointment", "presentation", "performance", "worship":
		return Busy
	case "on-the-phone":
		return OnCall
	}
	return Online
}

func (t *Tuple) check() error {
	if !deviceRE.MatchString(t.Device) {
		return fmt.Errorf("%w: device name %q", ErrMalformed, t.Device)
	}
	switch t.State {
	case Online, Away, Busy, DND, OnCall, Offline, Invisible:
	default:
		return fmt.Errorf("%w: state %q", ErrBadState, t.State)
	}
	if len(t.Note) > MaxNote {
		return fmt.Errorf("%w: note of %d bytes", ErrTooLarge, len(t.Note))
	}
	if len(t.Caps) > MaxCaps {
		return fmt.Errorf("%w: %d capabilities", ErrTooLarge, len(t.Caps))
	}
	for _, c := range t.Caps {
		if !capRE.MatchString(c) {
			return fmt.Errorf("%w: capability %q", ErrMalformed, c)
		}
	}
	if t.CertHash != "" && !hashRE.MatchString(t.CertHash) {
		return fmt.Errorf("%w: certificate hash %q", ErrMalformed, t.CertHash)
	}
	return nil
}

// Marshal writes the document. The account's aggregate goes into one
// person element (RFC 4479 §3.1) with its RPID activity and note, for
// watchers that read only that.
func (d *Document) Marshal() ([]byte, error) {
	if len(d.Tuples) > MaxTuples {
		return nil, fmt.Errorf("%w: %d tuples", ErrTooLarge, len(d.Tuples))
	}
	if !strings.HasPrefix(d.Entity, "pres:") && !strings.HasPrefix(d.Entity, "sip:") {
		return nil, fmt.Errorf("%w: entity %q", ErrMalformed, d.Entity)
	}
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<presence xmlns="` + NSPIDF + `" xmlns:dm="` + NSDM + `" xmlns:rpid="` + NSRPID + `" xmlns:px="` + NSPhoneX + `" entity="`)
	xml.EscapeText(&b, []byte(d.Entity))
	b.WriteString(`">` + "\n")
	for _, t := range d.Tuples {
		if err := t.check(); err != nil {
			return nil, err
		}
		basic := "open"
		if t.State == Offline {
			basic = "closed"
		}
		// Device names are valid XML IDs once prefixed (RFC 3863 §4.1.2).
		fmt.Fprintf(&b, " <tuple id=\"d-%s\">\n  <status><basic>%s</basic></status>\n", t.Device, basic)
		fmt.Fprintf(&b, "  <px:device>%s</px:device>\n  <px:state>%s</px:state>\n", t.Device, t.State)
		if len(t.Caps) > 0 {
			b.WriteString("  <px:caps>")
			xml.EscapeText(&b, []byte(strings.Join(t.Caps, " ")))
			b.WriteString("</px:caps>\n")
		}
		if t.CertHash != "" {
			fmt.Fprintf(&b, "  <px:cert hash=\"%s\" not-before=\"%s\"/>\n", t.CertHash, t.CertNotBefore.UTC().Format(time.RFC3339))
		}
		if t.Note != "" {
			b.WriteString("  <note>")
			xml.EscapeText(&b, []byte(t.Note))
			b.WriteString("</note>\n")
		}
		if !t.Since.IsZero() {
			fmt.Fprintf(&b, "  <timestamp>%s</timestamp>\n", t.Since.UTC().Format(time.RFC3339))
		}
		b.WriteString(" </tuple>\n")
	}
	agg := d.Aggregate()
	b.WriteString(` <dm:person id="p">`)
	if a := rpidActivity(agg.State); a != "" {
		fmt.Fprintf(&b, "<rpid:activities><rpid:%s/></rpid:activities>", a)
	}
	if agg.Note != "" {
		b.WriteString("<dm:note>")
		xml.EscapeText(&b, []byte(agg.Note))
		b.WriteString("</dm:note>")
	}
	b.WriteString("</dm:person>\n</presence>\n")
	return b.Bytes(), nil
}

type xPresence struct {
	XMLName xml.Name  `xml:"urn:ietf:params:xml:ns:pidf presence"`
	Entity  string    `xml:"entity,attr"`
	Tuples  []xTuple  `xml:"urn:ietf:params:xml:ns:pidf tuple"`
	Persons []xPerson `xml:"urn:ietf:params:xml:ns:pidf:data-model person"`
	Notes   []string  `xml:"urn:ietf:params:xml:ns:pidf note"`
}

type xTuple struct {
	ID        string   `xml:"id,attr"`
	Status    xStatus  `xml:"urn:ietf:params:xml:ns:pidf status"`
	Device    string   `xml:"urn:phonex:params:xml:ns:pidf device"`
	State     string   `xml:"urn:phonex:params:xml:ns:pidf state"`
	Caps      string   `xml:"urn:phonex:params:xml:ns:pidf caps"`
	Cert      *xCert   `xml:"urn:phonex:params:xml:ns:pidf cert"`
	Notes     []string `xml:"urn:ietf:params:xml:ns:pidf note"`
	Timestamp string   `xml:"urn:ietf:params:xml:ns:pidf timestamp"`
}

type xStatus struct {
	Basic string `xml:"urn:ietf:params:xml:ns:pidf basic"`
}

type xCert struct {
	Hash      string `xml:"hash,attr"`
	NotBefore string `xml:"not-before,attr"`
}

type xPerson struct {
	Activities *xActivities `xml:"urn:ietf:params:xml:ns:pidf:rpid activities"`
	Notes      []string     `xml:"urn:ietf:params:xml:ns:pidf:data-model note"`
}

type xActivities struct {
	Any []xml.Name `xml:",any"`
}

func (a *xActivities) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			a.Any = append(a.Any, t.Name)
			if err := d.Skip(); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// Parse reads a document. A tuple without PhoneX's elements (a standard
// phone's) is read from its basic status and the person's RPID activity;
// its device name is taken from the tuple id when it fits, else numbered.
func Parse(b []byte) (*Document, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	var x xPresence
	dec := xml.NewDecoder(bytes.NewReader(b))
	dec.Strict = true
	dec.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "us-ascii") {
			return r, nil
		}
		return nil, fmt.Errorf("charset %q", label)
	}
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(x.Tuples) > MaxTuples {
		return nil, fmt.Errorf("%w: %d tuples", ErrTooLarge, len(x.Tuples))
	}
	if x.Entity == "" {
		return nil, fmt.Errorf("%w: no entity", ErrMalformed)
	}
	personState := Online
	for _, p := range x.Persons {
		if p.Activities != nil {
			for _, n := range p.Activities.Any {
				if n.Space == NSRPID {
					personState = fromActivity(n.Local)
					break
				}
			}
		}
	}
	d := &Document{Entity: x.Entity}
	seen := map[string]bool{}
	for i, xt := range x.Tuples {
		t := Tuple{Device: strings.TrimSpace(xt.Device)}
		if t.Device == "" {
			t.Device = strings.TrimPrefix(strings.ToLower(xt.ID), "d-")
			if !deviceRE.MatchString(t.Device) {
				t.Device = fmt.Sprintf("t%d", i)
			}
		}
		if seen[t.Device] {
			return nil, fmt.Errorf("%w: device %q twice", ErrMalformed, t.Device)
		}
		seen[t.Device] = true
		switch basic := strings.TrimSpace(xt.Status.Basic); basic {
		case "open":
			t.State = personState
			if s := strings.TrimSpace(xt.State); s != "" {
				t.State = State(s)
			}
		case "closed":
			t.State = Offline
		default:
			return nil, fmt.Errorf("%w: basic status %q", ErrMalformed, basic)
		}
		if len(xt.Notes) > 0 {
			t.Note = strings.TrimSpace(xt.Notes[0])
		}
		if s := strings.TrimSpace(xt.Timestamp); s != "" {
			ts, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, fmt.Errorf("%w: timestamp %q", ErrMalformed, s)
			}
			t.Since = ts.UTC()
		}
		if c := strings.Fields(xt.Caps); len(c) > 0 {
			t.Caps = c
		}
		if xt.Cert != nil {
			t.CertHash = xt.Cert.Hash
			nb, err := time.Parse(time.RFC3339, xt.Cert.NotBefore)
			if err != nil {
				return nil, fmt.Errorf("%w: certificate not-before %q", ErrMalformed, xt.Cert.NotBefore)
			}
			t.CertNotBefore = nb.UTC()
		}
		if err := t.check(); err != nil {
			return nil, err
		}
		d.Tuples = append(d.Tuples, t)
	}
	return d, nil
}
