package pidf

import (
	"errors"
	"os"
	"reflect"
	"testing"
	"time"
)

// FuzzParse: a document from the network never panics, fails with one of
// the package's errors, and what parses writes out and parses back the same.
func FuzzParse(f *testing.F) {
	for _, d := range []Document{
		{Entity: "pres:alice@example.org", Tuples: []Tuple{{Device: "laptop", State: Away, Note: "n", Since: since,
			Caps: []string{"3.1.4"}, CertHash: "0123456789abcdef", CertNotBefore: since}}},
		{Entity: "pres:b@x", Tuples: []Tuple{{Device: "a", State: Offline}, {Device: "b", State: OnCall}}},
	} {
		b, err := d.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if b, err := os.ReadFile("testdata/linphone.xml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="x"><tuple><status><basic>open</basic></status></tuple></presence>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v is none of the package's", err)
			}
			return
		}
		out, err := d.Marshal()
		if err != nil {
			// Parse accepts entities Marshal does not write (a phone's
			// bare URI); nothing else may fail.
			return
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		for i := range d.Tuples {
			// Timestamps are written to the second.
			d.Tuples[i].Since = d.Tuples[i].Since.Truncate(time.Second)
			d.Tuples[i].CertNotBefore = d.Tuples[i].CertNotBefore.Truncate(time.Second)
		}
		if !reflect.DeepEqual(d, again) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", again, d)
		}
	})
}
