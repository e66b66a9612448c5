package amp

import (
	"reflect"
	"testing"
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
