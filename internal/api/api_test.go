package api

import (
	"bytes"
	"encoding/json"
	"errors"
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
			_ = Decode(bytes.NewReader(b), v)
		}
	})
}
