package sipua

import (
	"errors"
	"strings"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestRoutedDialFailure: through the node, its own answers (403 before
// anything rang, 480 with no device online, 404 outside its domain) read
// as such; a device's answers read as for a direct call.
func TestRoutedDialFailure(t *testing.T) {
	u := &UA{proxy: "127.0.0.1:5061"}
	direct := &UA{}
	tests := []struct {
		code        int
		want        error
		cause, text string
		directWant  error
	}{
		{403, ErrNotContact, "not_contact", "not mutual contacts", ErrDeclined},
		{480, ErrOffline, "offline", "is offline", ErrNoAnswer},
		{404, ErrUnreachable, "unreachable", "only addresses of its own domain", ErrUnreachable},
		{408, ErrNoAnswer, "no_answer", "nobody answered", ErrNoAnswer},
		{486, ErrBusy, "busy", "is busy", ErrBusy},
		{603, ErrDeclined, "declined", "declined the call", ErrDeclined},
		{488, ErrRefused, "refused", "cannot take this call", ErrRefused},
	}
	for _, tc := range tests {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bravo", Host: "example.org"})
		res := sip.NewResponseFromRequest(req, tc.code, "Reason", nil)
		err := u.dialFailure("sip:bravo@example.org;device=b1", &sipgo.ErrDialogResponse{Res: res}, false)
		if !errors.Is(err, tc.want) || Cause(err) != tc.cause || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%d through the node: %v (cause %q), want %v %q containing %q", tc.code, err, Cause(err), tc.want, tc.cause, tc.text)
		}
		if strings.Contains(err.Error(), ";device") {
			t.Errorf("%d: the device parameter shows in %q", tc.code, err)
		}
		if err := direct.dialFailure("sip:bravo@127.0.0.1:5070", &sipgo.ErrDialogResponse{Res: res}, false); !errors.Is(err, tc.directWant) {
			t.Errorf("%d direct: %v, want %v", tc.code, err, tc.directWant)
		}
	}
}

// TestRoutedCaller: only a routed user agent believes the node's
// P-Asserted-Identity.
func TestRoutedCaller(t *testing.T) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bravo", Host: "example.org"})
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:alpha@example.org;gr=a1>"))
	if got := routedCaller(&UA{proxy: "127.0.0.1:5061"}, req); got != "alpha@example.org/a1" {
		t.Errorf("routed: %q", got)
	}
	if got := routedCaller(&UA{}, req); got != "" {
		t.Errorf("direct: %q, want the header ignored", got)
	}
}
