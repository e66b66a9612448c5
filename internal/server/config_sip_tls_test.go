package server

import "testing"

func TestConfigSIPTLSTakeover(t *testing.T) {
	c := Defaults("/d")
	if !c.SIPTLSTakeover {
		t.Fatal("takeover off by default")
	}
	for _, on := range []bool{false, true} {
		c.SIPTLSTakeover = on
		back, err := ParseConfig("/d", c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if back.SIPTLSTakeover != on {
			t.Fatalf("round trip of %v: %v", on, back.SIPTLSTakeover)
		}
	}
	if _, err := ParseConfig("/d", []byte("sip_tls_takeover = maybe")); err == nil {
		t.Fatal("sip_tls_takeover = maybe accepted")
	}
}
