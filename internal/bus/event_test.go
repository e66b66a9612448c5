package bus

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestEventRoundTrip(t *testing.T) {
	for _, e := range []Event{
		{Node: "n1", Kind: KindWake, Devices: []int64{1, 2, 3}},
		{Node: "n1", Kind: KindHeld, Devices: []int64{9}},
		{Node: "n-2.x_y", Kind: KindHello},
		{Node: "n1", Kind: KindBeat},
		{Node: "n1", Kind: KindPresence, Presence: &Presence{Change: ChangeConnected, Account: "bravo@example.org", Device: "d1",
			Caps: []string{"audio", "files"}, CertHash: "0123456789abcdef", CertNotBefore: 1700000000, Until: 1700000600000}},
		{Node: "n1", Kind: KindPresence, Presence: &Presence{Change: ChangePublished, Account: "a@b.c", Device: "d", State: "away", Note: "lunch", HasState: true, Expires: 3600000}},
	} {
		b, err := Encode(e)
		if err != nil {
			t.Fatalf("%+v: %v", e, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		e.V = version
		if !reflect.DeepEqual(got, e) {
			t.Errorf("round trip: %+v, want %+v", got, e)
		}
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{`not json`, ErrMalformed},
		{`{"v":2,"node":"a","kind":"beat"}`, ErrVersion},
		{`{"v":1,"node":"a","kind":"nope"}`, ErrUnknownKind},
		{`{"v":1,"node":"","kind":"beat"}`, ErrMalformed},
		{`{"v":1,"node":"a/b","kind":"beat"}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"wake"}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"wake","devices":[0]}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"wake","devices":[-5]}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"held","devices":[1,2]}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"presence"}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"beat","presence":{"change":"connected","account":"x","device":"y"}}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"presence","presence":{"change":"exploded","account":"x","device":"y"}}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"presence","presence":{"change":"connected","account":"","device":"y"}}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"presence","presence":{"change":"connected","account":"x","device":"y","until":-1}}`, ErrMalformed},
		{`{"v":1,"node":"a","kind":"presence","presence":{"change":"connected","account":"x","device":"y","caps":[""]}}`, ErrMalformed},
		{strings.Repeat(" ", MaxEventSize+1), ErrTooLarge},
	} {
		_, err := Decode([]byte(c.in))
		if !errors.Is(err, c.want) {
			t.Errorf("%.60s: %v, want %v", c.in, err, c.want)
		}
	}
	many := make([]int64, MaxDevices+1)
	for i := range many {
		many[i] = 1
	}
	if _, err := Encode(Event{Node: "a", Kind: KindWake, Devices: many}); !errors.Is(err, ErrMalformed) {
		t.Errorf("too many devices: %v", err)
	}
}

// FuzzDecode: any bytes give an event that encodes again, or an error;
// never a panic.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/events/*.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"node":"a","kind":"wake","devices":[1,2]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v", err)
		}
	})
}

func TestHopRoundTrip(t *testing.T) {
	e := Event{Node: "n1", Kind: KindSIP, Hop: &Hop{To: "n2", Tx: "abc", Msg: []byte("INVITE sip:b@example.org SIP/2.0\r\n\r\n"),
		Caller: &Caller{AccountID: 1, DeviceID: 2, Account: "a@example.org", Device: "a1"}}}
	b, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e.V = version
	if !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: %+v, want %+v", got, e)
	}
	for _, bad := range []string{
		`{"v":1,"node":"a","kind":"sip"}`,
		`{"v":1,"node":"a","kind":"sip","hop":{"to":"","tx":"x","msg":"eA=="}}`,
		`{"v":1,"node":"a","kind":"sip","hop":{"to":"b","tx":"","msg":"eA=="}}`,
		`{"v":1,"node":"a","kind":"sip","hop":{"to":"b","tx":"x"}}`,
		`{"v":1,"node":"a","kind":"sip","hop":{"to":"b","tx":"x","msg":"eA==","caller":{"account_id":0}}}`,
		`{"v":1,"node":"a","kind":"beat","hop":{"to":"b","tx":"x","msg":"eA=="}}`,
	} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
