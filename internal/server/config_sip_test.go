package server

import (
	"testing"
	"time"
)

func TestConfigSIPLimits(t *testing.T) {
	c := Defaults("/d")
	c.SIP.MaxConns, c.SIP.MaxConnsPerSource, c.SIP.IdleTimeout, c.SIP.UnauthRate = 100, 7, 90*time.Second, 2.5
	back, err := ParseConfig("/d", c.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if back.SIP != c.SIP {
		t.Fatalf("round trip: %+v, want %+v", back.SIP, c.SIP)
	}
	for _, in := range []string{"sip_max_connections = 0", "sip_max_connections_per_source = -1", "sip_read_timeout = 1ms", "sip_idle_timeout = x", "sip_unauth_rate = 0"} {
		if _, err := ParseConfig("/d", []byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
