package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeStrict(t *testing.T) {
	var u Unlock
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`{"handle":"h","blind":"AAEC"}`, true},
		{`{"handle":"h","blind":"AAEC","extra":1}`, false},
		{`{"handle":"h"} {"handle":"x"}`, false},
		{`{"handle":`, false},
		{`{"blind":"!!"}`, false},
		{`{"handle":"` + strings.Repeat("a", MaxBody) + `"}`, false},
	} {
		if err := Decode(strings.NewReader(tc.in), &u); (err == nil) != tc.ok {
			t.Errorf("%.40q: %v", tc.in, err)
		}
	}
}

func TestErrorIs(t *testing.T) {
	var err error = &Error{Code: CodeLocked, Message: "locked"}
	if !errors.Is(err, &Error{Code: CodeLocked}) || errors.Is(err, &Error{Code: CodeThrottled}) {
		t.Fatal("errors.Is by code")
	}
}

func FuzzDecode(f *testing.F) {
	for _, v := range []any{EnrollBegin{User: "a@b", Code: "X"}, EnrollFinish{Session: "s"}, LoginBegin{}, LoginFinish{}, Unlock{Handle: "h"}, Renew{}, ContactAdd{User: "a@b"}, PasswdBegin{}, PasswdFinish{},
		Confirm{Session: "s"}, LoginBegin{User: "a@b", Proof: &Solution{Token: []byte{1, 2}, Counter: 7}},
		ErrorBody{Error: &Error{Code: CodeHumanCheck, Challenge: &Challenge{Token: []byte{1}, Bits: 20}}}} {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []any{new(EnrollBegin), new(EnrollFinish), new(LoginBegin), new(LoginFinish), new(Unlock), new(Renew), new(ContactAdd), new(PasswdBegin), new(PasswdFinish), new(ErrorBody), new(Certs), new(Contact), new(Confirm), new(Solution)} {
			if Decode(bytes.NewReader(b), v) != nil {
				continue
			}
			// What decodes encodes to JSON that decodes to the same value.
			enc, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%T does not re-encode: %v", v, err)
			}
			v2 := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := Decode(bytes.NewReader(enc), v2); err != nil || !reflect.DeepEqual(v, v2) {
				t.Fatalf("%T: re-encoded %s decodes to %+v, %v; want %+v", v, enc, v2, err, v)
			}
		}
	})
}
