package amp

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
)

// fuzzKind checks that decoding k never panics and that whatever decodes
// re-encodes to something that decodes to the same message.
func fuzzKind(f *testing.F, k Kind) {
	for _, m := range samples() {
		if m.Kind() == k {
			b, err := m.Marshal()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	d := NewDispatcher()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := d.Decode(k, b)
		if err != nil {
			return
		}
		again, err := m.Marshal()
		if err != nil {
			t.Fatalf("decoded %+v does not re-encode: %v", m, err)
		}
		m2, err := d.Decode(k, again)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoded %+v decodes to %+v, %v", m, m2, err)
		}
	})
}

func FuzzTextV1(f *testing.F)         { fuzzKind(f, TextV1) }
func FuzzTextV2(f *testing.F)         { fuzzKind(f, TextV2) }
func FuzzNotificationV1(f *testing.F) { fuzzKind(f, NotificationV1) }
func FuzzReceiptV1(f *testing.F)      { fuzzKind(f, ReceiptV1) }

// FuzzCapabilityRecord: a record from the network never panics, and what
// parses re-encodes to the same bytes.
func FuzzCapabilityRecord(f *testing.F) {
	for _, r := range []*CapabilityRecord{
		{Device: "alpha@example.org/laptop", Capabilities: Capabilities(true), Issued: time.UnixMilli(1700000000123), SignedPrekey: 3, PQPrekey: 3},
		{Device: "b@x/y", Capabilities: []string{}, Issued: time.UnixMilli(0)},
	} {
		b, err := r.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseCapabilityRecord(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v is not ErrBadRecord", err)
			}
			return
		}
		again, err := r.Marshal()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("record %+v re-encodes to %x (%v), not %x", r, again, err, b)
		}
	})
}
