package pidf

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

var since = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  Document
	}{
		{"empty", Document{Entity: "pres:alice@example.org"}},
		{"two devices", Document{Entity: "pres:alice@example.org", Tuples: []Tuple{
			{Device: "laptop", State: Away, Note: "lunch <& back \"soon\">", Since: since, Caps: []string{"3.1.4", "3.1.3", "4.1"},
				CertHash: "0123456789abcdef", CertNotBefore: since.Add(-time.Hour)},
			{Device: "phone", State: Offline, Since: since},
		}}},
		{"every state", Document{Entity: "pres:b@x", Tuples: []Tuple{
			{Device: "a", State: Online}, {Device: "b", State: Busy}, {Device: "c", State: DND}, {Device: "d", State: OnCall},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.doc.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("parse %s: %v", b, err)
			}
			if !reflect.DeepEqual(*got, tc.doc) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", *got, tc.doc)
			}
		})
	}
}

func TestAggregate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tuples []Tuple
		want   State
		note   string
		online []string
	}{
		{"none", nil, Offline, "", []string{}},
		{"all offline", []Tuple{{Device: "a", State: Offline}}, Offline, "", []string{}},
		{"most available wins", []Tuple{{Device: "a", State: DND, Note: "x"}, {Device: "b", State: Away, Note: "y"}}, Away, "y", []string{"a", "b"}},
		{"online beats away", []Tuple{{Device: "a", State: Away}, {Device: "b", State: Online}}, Online, "", []string{"a", "b"}},
		{"a call wins", []Tuple{{Device: "a", State: Online}, {Device: "b", State: OnCall}}, OnCall, "", []string{"a", "b"}},
		{"offline devices not listed", []Tuple{{Device: "a", State: Busy}, {Device: "b", State: Offline}}, Busy, "", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := (&Document{Tuples: tc.tuples}).Aggregate()
			if a.State != tc.want || a.Note != tc.note || !reflect.DeepEqual(a.Devices, tc.online) {
				t.Fatalf("got %+v, want %s %q %v", a, tc.want, tc.note, tc.online)
			}
		})
	}
}

// TestStandardPhone reads a document as linphone publishes it: no PhoneX
// elements, the activity in the person.
func TestStandardPhone(t *testing.T) {
	b, err := os.ReadFile("testdata/linphone.xml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tuples) != 1 || d.Tuples[0].State != Away || d.Tuples[0].Device != "ypbrhb" || !d.Tuples[0].Since.Equal(since) {
		t.Fatalf("got %+v", d.Tuples)
	}
}

func TestParseRefuses(t *testing.T) {
	ok := `<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:px="urn:phonex:params:xml:ns:pidf" entity="pres:a@b">`
	for _, tc := range []struct {
		name, doc string
		want      error
	}{
		{"not xml", "hello", ErrMalformed},
		{"wrong namespace", `<presence xmlns="urn:other" entity="pres:a@b"/>`, ErrMalformed},
		{"no entity", `<presence xmlns="urn:ietf:params:xml:ns:pidf"/>`, ErrMalformed},
		{"bad basic", ok + `<tuple id="a"><status><basic>maybe</basic></status></tuple></presence>`, ErrMalformed},
		{"bad state", ok + `<tuple id="a"><status><basic>open</basic></status><px:state>sleepy</px:state></tuple></presence>`, ErrBadState},
		{"bad hash", ok + `<tuple id="a"><status><basic>open</basic></status><px:cert hash="xyz" not-before="2026-01-01T00:00:00Z"/></tuple></presence>`, ErrMalformed},
		{"bad timestamp", ok + `<tuple id="a"><status><basic>open</basic></status><timestamp>yesterday</timestamp></tuple></presence>`, ErrMalformed},
		{"duplicate device", ok + `<tuple id="d-a"><status><basic>open</basic></status></tuple><tuple id="d-a"><status><basic>open</basic></status></tuple></presence>`, ErrMalformed},
		{"long note", ok + `<tuple id="a"><status><basic>open</basic></status><note>` + strings.Repeat("n", MaxNote+1) + `</note></tuple></presence>`, ErrTooLarge},
		{"too many tuples", ok + strings.Repeat(`<tuple id="x"><status><basic>open</basic></status></tuple>`, MaxTuples+1) + `</presence>`, ErrTooLarge},
		{"too big", ok + strings.Repeat(" ", MaxSize) + `</presence>`, ErrTooLarge},
		{"entity expansion", `<!DOCTYPE p [<!ENTITY e "x">]>` + ok + `<tuple id="a"><status><basic>open</basic></status><note>&e;</note></tuple></presence>`, ErrMalformed},
		{"other charset", `<?xml version="1.0" encoding="ISO-8859-1"?>` + ok + `</presence>`, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseState(t *testing.T) {
	for _, s := range []string{"online", "AWAY", " busy", "dnd", "invisible"} {
		if _, err := ParseState(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "oncall", "offline", "x"} {
		if _, err := ParseState(s); !errors.Is(err, ErrBadState) {
			t.Errorf("%q: got %v", s, err)
		}
	}
}
